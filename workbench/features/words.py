"""The one tokenisation rule shared by everything word-level, and matching words to timings.

Word-level features (contextual and static embeddings, GloVe vectors), ASR word error rates,
forced alignment and the attention-vs-timing analyses must agree on what "word i" is. They all
use :func:`split_words`:

1. curly apostrophes become ``'`` and bracketed tags (``[LAUGHTER]``, ``[BREATHING]``) are
   removed; a dash run (``--``) separates words;
2. the text is split on whitespace;
3. each token loses its surrounding punctuation (anything not a letter or digit at either
   end; inner apostrophes and hyphens stay, so "can't" and "well-known" are one word) and is
   lower-cased;
4. tokens left empty (punctuation only, e.g. ``-`` or ``...``) are dropped.

So row ``i`` of a word embedding, word ``i`` of :func:`split_words` and span ``i`` of
:func:`match_word_timings` are the same word.

>>> split_words("Well, [LAUGHTER] I can't -- I CAN'T!  ...really?")
['well', 'i', "can't", 'i', "can't", 'really']
"""

from __future__ import annotations

import difflib
import re
from typing import Sequence

# Sphinx/IEMOCAP non-word tokens in .wdseg files and pocketsphinx segmentations.
_SILENCE = {"<s>", "</s>", "<sil>", "sil", "[noise]", "[speech]"}
_TAG = re.compile(r"\[[^\[\]]*\]")  # [LAUGHTER], [BREATHING], [GARBAGE] ...
_FILLER = re.compile(r"^\+\+.*\+\+$|^\+.*\+$")  # ++LAUGHTER++, +NSN+
_VARIANT = re.compile(r"\(\d+\)$")  # pronunciation variant: ME(2), to(3)
_DASHES = re.compile(r"-{2,}|[\u2013\u2014]")  # "well--I" or an en/em dash separates words
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})

Span = tuple[float, float]


def _strip_token(tok: str) -> str:
    """Drop leading/trailing characters that are not letters or digits; lower-case."""
    i, j = 0, len(tok)
    while i < j and not tok[i].isalnum():
        i += 1
    while j > i and not tok[j - 1].isalnum():
        j -= 1
    return tok[i:j].lower()


def split_words(text: str | None) -> list[str]:
    """Transcript -> lower-cased words (rules in the module docstring); ``[]`` for empty text.

    >>> split_words("Excuse me.")
    ['excuse', 'me']
    >>> split_words("  ?! -- [BREATHING] ")
    []
    >>> split_words("It\u2019s O.K., Mr. Smith-Jones")
    ["it's", 'o.k', 'mr', 'smith-jones']
    """
    if not text:
        return []
    text = _DASHES.sub(" ", _TAG.sub(" ", text.translate(_APOSTROPHES)))
    return [w for w in (_strip_token(t) for t in text.split()) if w]


def normalise_timing_token(token: str) -> str | None:
    """A timing file's token -> the word :func:`split_words` would give, or None for non-words.

    Silence and sentence markers, fillers (``++LAUGHTER++``) and noise tokens give None;
    pronunciation variants lose their ``(n)``.

    >>> [normalise_timing_token(t) for t in ["<s>", "ME(2)", "++LAUGHTER++", "CAN'T", "<sil>"]]
    [None, 'me', None, "can't", None]
    """
    tok = _VARIANT.sub("", token.strip()).lower()
    if not tok or tok in _SILENCE or _FILLER.match(tok) or _TAG.fullmatch(tok):
        return None
    words = split_words(tok)
    # A timing token is one word; should it hold several (rare), join them so it still matches.
    return " ".join(words) if words else None


def match_word_timings(words: Sequence[str], timings: Sequence[tuple[str, float, float]] | None,
                       interpolate: bool = True) -> list[Span | None]:
    """Align transcript ``words`` (from :func:`split_words`) with timed tokens, in order.

    ``timings`` are ``(token, start_s, end_s)`` as in ``Utterance.words`` (from .wdseg files,
    ASR or forced alignment): non-words are skipped (:func:`normalise_timing_token`) and the
    rest matched to ``words`` with :class:`difflib.SequenceMatcher`, which keeps order and
    tolerates insertions, deletions and substitutions. Returns one ``(start, end)`` or None per
    word of ``words``.

    Unmatched words, with ``interpolate=True`` (the default), get spans shared out evenly in
    order over the time available to them:

    - words replaced by other timed tokens (a spelling difference such as "ok"/"okay") share
      the span from the first to the last of those tokens;
    - words with no timed counterpart share the gap between the previous matched word's end
      (or the first timed token's start) and the next matched word's start (or the last timed
      token's end);
    - a gap of zero length, or no timed words at all, gives None.

    With ``interpolate=False`` every unmatched word is None.

    >>> t = [("<s>", 0.0, 0.3), ("EXCUSE", 0.33, 0.61), ("ME(2)", 0.62, 0.9), ("</s>", 0.91, 1.1)]
    >>> match_word_timings(["excuse", "me"], t)
    [(0.33, 0.61), (0.62, 0.9)]
    >>> match_word_timings(["oh", "excuse", "me"], [("<sil>", 0, .1), ("EXCUSE", .3, .6), ("ME", .6, .9)])
    [None, (0.3, 0.6), (0.6, 0.9)]
    >>> match_word_timings(["excuse", "uh", "me"], [("EXCUSE", .3, .6), ("ME", .8, .9)])
    [(0.3, 0.6), (0.6, 0.8), (0.8, 0.9)]
    """
    n = len(words)
    timed = [(w, float(s), float(e)) for tok, s, e in (timings or [])
             if (w := normalise_timing_token(str(tok))) is not None]
    out: list[Span | None] = [None] * n
    if not n or not timed:
        return out
    sm = difflib.SequenceMatcher(a=list(words), b=[w for w, _, _ in timed], autojunk=False)
    gaps: list[tuple[int, int, int, int]] = []  # (word i1, i2, timed j1, j2) left unmatched
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            for k in range(i2 - i1):
                out[i1 + k] = (timed[j1 + k][1], timed[j1 + k][2])
        elif i2 > i1:
            gaps.append((i1, i2, j1, j2))
    if not interpolate:
        return out
    lo_all, hi_all = timed[0][1], timed[-1][2]
    for i1, i2, j1, j2 in gaps:
        if j2 > j1:  # replaced by other timed tokens: share their span
            lo, hi = timed[j1][1], timed[j2 - 1][2]
        else:  # inserted: share the gap between matched neighbours
            prev = next((out[k] for k in range(i1 - 1, -1, -1) if out[k] is not None), None)
            nxt = next((out[k] for k in range(i2, n) if out[k] is not None), None)
            lo = prev[1] if prev is not None else lo_all
            hi = nxt[0] if nxt is not None else hi_all
        if hi - lo <= 0:
            continue
        step = (hi - lo) / (i2 - i1)
        for k in range(i2 - i1):
            out[i1 + k] = (round(lo + k * step, 6), round(lo + (k + 1) * step, 6))
    return out
