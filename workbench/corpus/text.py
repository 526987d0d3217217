"""Transcript normalisation shared by every comparison of transcripts.

Two lines count as the same transcript when they match after this normalisation: the corpus
summary's repeated-transcript table and the leakage audit must agree on that, so both use it.

>>> normalize_text("Um, I can't BELIEVE it! [LAUGHTER]")
'i cant believe it'
"""

from __future__ import annotations

import re

# Hesitations and backchannel noises that carry no lexical content; removing them makes
# "Um, excuse me." and "Excuse me." the same line, as an actor delivering a script would.
FILLERS = frozenset(
    "um umm ummm uh uhh uhm hmm hmmm hm mm mmm mhm er erm ah ahh eh".split()
)
# [LAUGHTER] (IEMOCAP transcripts), <noise>, ++BREATHING++ (Sphinx tokens), {LG} style tags.
_TAG = re.compile(r"\[[^\]]*\]|<[^>]*>|\+\+[^+]*\+\+|\{[^}]*\}")
_APOSTROPHE = re.compile(r"['\u2019`]")  # MELD uses curly apostrophes
_NON_WORD = re.compile(r"[^\w]+")


def normalize_text(text: str | None) -> str:
    """Lower case, tags and fillers removed, apostrophes dropped, other punctuation as spaces."""
    if not text or not isinstance(text, str):
        return ""
    text = _TAG.sub(" ", text)
    text = _APOSTROPHE.sub("", text.lower())
    words = [w for w in _NON_WORD.sub(" ", text).split() if w not in FILLERS and w != "_"]
    return " ".join(words)
