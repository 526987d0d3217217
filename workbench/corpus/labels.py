"""Label schemes: which corpus codes become which classes.

Papers disagree on the IEMOCAP class set, and results are only comparable within one scheme,
so the scheme is a named, explicit choice everywhere (folds, training, paper tables).

>>> s = get_scheme("iemocap4")
>>> s.classes, s.map("exc"), s.map("fru")
(('neu', 'hap', 'ang', 'sad'), 'hap', None)
>>> get_scheme("msp_podcast4").map("H"), get_scheme("sentiment").source
('hap', 'sentiment')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from workbench.corpus.manifest import Manifest, Utterance

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
# MELD's emotion words (the loader lower-cases them), in the order MELD papers list them.
MELD_EMOTIONS = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")

# MSP-Podcast EmoClass letters -> the workbench's class names (IEMOCAP's codes where they
# exist, so cross-corpus experiments share class names). O (other) and X (no agreement)
# have no class.
MSP_PODCAST_CODES = {
    "N": "neu", "H": "hap", "A": "ang", "S": "sad", "U": "sur", "F": "fea", "D": "dis",
    "C": "con", "O": "oth", "X": "xxx",
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
    """A class list plus the mapping from corpus codes to those classes.

    ``source`` names where the code is read: ``"label"`` (the utterance's label) or a key of
    ``utt.extra`` (e.g. ``"sentiment"`` for MELD's sentiment annotation).
    """

    name: str
    classes: tuple[str, ...]
    mapping: dict[str, str]
    description: str = ""
    source: str = "label"

    def map(self, code: str) -> str | None:
        """The class for a corpus code, or None when the scheme drops that code."""
        return self.mapping.get(code)

    def code_of(self, utt: Utterance) -> str | None:
        """The code this scheme reads from ``utt`` (its label, or ``extra[source]``)."""
        if self.source == "label":
            return utt.label
        value = (utt.extra or {}).get(self.source)
        return value if isinstance(value, str) else None

    def index(self, cls: str) -> int:
        return self.classes.index(cls)

    def apply(self, manifest: Manifest) -> Manifest:
        """Keep utterances whose label the scheme maps, relabelled to the scheme's classes.

        The original code is kept in ``extra["label_code"]`` (e.g. ``exc`` merged into ``hap``);
        for a scheme whose ``source`` is not the label, the replaced label goes to
        ``extra["label_before_scheme"]``.
        """
        kept = []
        for u in manifest:
            code = self.code_of(u)
            cls = self.map(code) if code is not None else None
            if cls is not None:
                extra = {**u.extra, "label_code": code}
                if self.source != "label":
                    extra["label_before_scheme"] = u.label
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
        LabelScheme(
            "meld7",
            MELD_EMOTIONS,
            _identity(MELD_EMOTIONS),
            "MELD's 7 emotions (MCSAN reports weighted F1 over them on the official test split).",
        ),
        LabelScheme(
            "sentiment",
            ("negative", "neutral", "positive"),
            _identity(("negative", "neutral", "positive")),
            "MELD's 3-way sentiment annotation, read from extra['sentiment'] (not the emotion).",
            source="sentiment",
        ),
        LabelScheme(
            "msp_podcast",
            ("neu", "hap", "ang", "sad", "sur", "fea", "dis", "con"),
            {code: MSP_PODCAST_CODES[code] for code in "NHASUFDC"},
            "MSP-Podcast's 8 primary emotions (Odyssey 2024 SER challenge); O and X dropped.",
        ),
        LabelScheme(
            "msp_podcast4",
            ("neu", "hap", "ang", "sad"),
            {code: MSP_PODCAST_CODES[code] for code in "NHAS"},
            "MSP-Podcast neutral/happy/angry/sad (Pepino et al. 2020).",
        ),
    ]
}


def get_scheme(name: str) -> LabelScheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown label scheme {name!r}; known: {sorted(SCHEMES)}") from None
