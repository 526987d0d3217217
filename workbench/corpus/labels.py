"""Label schemes: which corpus codes become which classes.

Papers disagree on the IEMOCAP class set, and results are only comparable within one scheme,
so the scheme is a named, explicit choice everywhere (folds, training, paper tables).

>>> s = get_scheme("iemocap4")
>>> s.classes, s.map("exc"), s.map("fru")
(('neu', 'hap', 'ang', 'sad'), 'hap', None)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from workbench.corpus.manifest import Manifest

# Every categorical code of IEMOCAP's EmoEvaluation summary lines; `xxx` = no majority.
IEMOCAP_CODES = ("neu", "hap", "ang", "sad", "exc", "fru", "fea", "sur", "dis", "oth", "xxx")

# Evaluators write words ("Neutral;", "Frustration;"); the summary line uses codes.
IEMOCAP_WORD_TO_CODE = {
    "neutral": "neu",
    "neutral state": "neu",
    "happiness": "hap",
    "anger": "ang",
    "sadness": "sad",
    "excited": "exc",
    "frustration": "fru",
    "fear": "fea",
    "surprise": "sur",
    "disgust": "dis",
    "other": "oth",
}
CODE_TO_IEMOCAP_WORD = {
    "neu": "Neutral",
    "hap": "Happiness",
    "ang": "Anger",
    "sad": "Sadness",
    "exc": "Excited",
    "fru": "Frustration",
    "fea": "Fear",
    "sur": "Surprise",
    "dis": "Disgust",
    "oth": "Other",
}


@dataclass(frozen=True)
class LabelScheme:
    """A class list plus the mapping from corpus codes to those classes."""

    name: str
    classes: tuple[str, ...]
    mapping: dict[str, str]
    description: str = ""

    def map(self, code: str) -> str | None:
        """The class for a corpus code, or None when the scheme drops that code."""
        return self.mapping.get(code)

    def index(self, cls: str) -> int:
        return self.classes.index(cls)

    def apply(self, manifest: Manifest) -> Manifest:
        """Keep utterances whose label the scheme maps, relabelled to the scheme's classes.

        The original code is kept in ``extra["label_code"]`` (e.g. ``exc`` merged into ``hap``).
        """
        kept = []
        for u in manifest:
            cls = self.map(u.label)
            if cls is not None:
                extra = {**u.extra, "label_code": u.label}
                kept.append(dataclasses.replace(u, label=cls, extra=extra))
        return Manifest(kept)


def _identity(codes: tuple[str, ...]) -> dict[str, str]:
    return {c: c for c in codes}


SCHEMES: dict[str, LabelScheme] = {
    s.name: s
    for s in [
        LabelScheme(
            "iemocap4",
            ("neu", "hap", "ang", "sad"),
            {**_identity(("neu", "hap", "ang", "sad")), "exc": "hap"},
            "The common 4-class set: neutral, happy+excited merged, angry, sad (5,531 utts).",
        ),
        LabelScheme(
            "iemocap4_noexc",
            ("neu", "hap", "ang", "sad"),
            _identity(("neu", "hap", "ang", "sad")),
            "4 classes with excited dropped rather than merged (older papers).",
        ),
        LabelScheme(
            "iemocap6",
            ("neu", "hap", "ang", "sad", "exc", "fru"),
            _identity(("neu", "hap", "ang", "sad", "exc", "fru")),
            "6 classes as in conversational ERC work.",
        ),
        LabelScheme(
            "iemocap7",
            ("ang", "exc", "hap", "sad", "fru", "sur", "neu"),
            _identity(("ang", "exc", "hap", "sad", "fru", "sur", "neu")),
            "7 classes of AMH (Yoon 2020) and MCSAN (Sun).",
        ),
    ]
}


def get_scheme(name: str) -> LabelScheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown label scheme {name!r}; known: {sorted(SCHEMES)}") from None
