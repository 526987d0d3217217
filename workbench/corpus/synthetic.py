"""Generator of the built-in default corpus: synthetic emotional speech in IEMOCAP's layout.

Nothing real can be downloaded and IEMOCAP is licence-gated, so the workbench ships this
stand-in. It is **synthetic** (espeak-ng speech, simulated evaluators, simulated visual
descriptors) and is never presented as IEMOCAP. It writes the exact on-disk layout and file
formats of ``IEMOCAP_full_release`` so that :func:`workbench.corpus.iemocap.prepare_iemocap`
reads it and the real loader is exercised end to end::

    IEMOCAP_full_release/SYNTHETIC_README.txt
    IEMOCAP_full_release/Session{n}/dialog/EmoEvaluation/<dialog>.txt
    IEMOCAP_full_release/Session{n}/dialog/transcriptions/<dialog>.txt
    IEMOCAP_full_release/Session{n}/sentences/wav/<dialog>/<utt>.wav            16 kHz PCM16
    IEMOCAP_full_release/Session{n}/sentences/ForcedAlignment/<dialog>/<utt>.wdseg
    IEMOCAP_full_release/Session{n}/sentences/visual/<dialog>/<utt>.npy        (frames, D) f32

How emotion gets into the data (DESIGN.md section 4):

* every utterance has a majority label drawn so that the corpus-wide counts follow
  ``SynthConfig.label_weights`` exactly (largest-remainder rounding), IEMOCAP's by default;
* scripted dialogs (``script01..03``) say the same lines in every session; each line has a
  canonical emotion that a performance repeats with probability ``script_repeat``;
* each utterance expresses its emotion through prosody (espeak rate, pitch, range, volume,
  word gap), through words (emotion phrases from a small grammar), both, or neither;
  speakers have their own voice and baseline, every utterance gets random variation, a random
  gain and background noise at a random SNR;
* three simulated evaluators vote; the summary label is their majority, ``xxx`` when all
  three differ; V/A/D ratings (1-5) are drawn around per-emotion means;
* visual descriptors (3 fps, ``visual_dim`` floats) mix a speaker vector, an emotion direction
  scaled by a per-utterance expressiveness and AR(1) noise.

Everything is drawn from numpy Generators seeded by ``seed`` (plans in one pass, audio per
utterance from a seed derived from the utterance id), so the same seed gives byte-identical
files whatever the number of worker processes.

>>> cfg = CORPUS_SIZES["smoke"]
>>> cfg.n_sessions, len(cfg.dialogs), cfg.n_utterances
(5, 5, 199)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.corpus import _synth_text as txt
from workbench.corpus.labels import CODE_TO_IEMOCAP_WORD
from workbench.corpus.manifest import Manifest
from workbench.corpus.registry import register_corpus

# IEMOCAP full release: 10,039 utterances by majority code (the target label distribution).
IEMOCAP_COUNTS: dict[str, int] = {
    "neu": 1708, "fru": 1849, "ang": 1103, "sad": 1084, "exc": 1041, "hap": 595, "sur": 107,
    "fea": 40, "dis": 2, "oth": 3, "xxx": 2507,
}

# Offsets from a speaker's baseline per emotion, at full prosodic strength:
# (rate wpm, pitch 0-99, pitch range 0-99, volume 0-200, word gap in 10 ms units).
EMOTION_PROSODY: dict[str, tuple[float, float, float, float, float]] = {
    "neu": (0, 0, 0, 0, 0),
    "hap": (15, 10, 22, 15, 0),
    "exc": (30, 14, 28, 30, 0),
    "ang": (25, 4, 6, 60, 0),
    "sad": (-45, -10, -25, -35, 5),
    "fru": (10, 2, -5, 25, 1),
    "fea": (35, 15, -15, -15, 0),
    "sur": (0, 20, 35, 25, 0),
    "dis": (-25, -8, -5, 10, 2),
    "oth": (0, 0, 0, 0, 0),
}

# Mean (valence, activation, dominance) ratings on IEMOCAP's 1-5 scale.
EMOTION_VAD: dict[str, tuple[float, float, float]] = {
    "neu": (3.0, 2.4, 2.8), "hap": (4.0, 3.2, 3.1), "exc": (4.0, 3.7, 3.4),
    "ang": (1.9, 3.8, 3.9), "sad": (2.0, 2.2, 2.3), "fru": (2.0, 3.2, 3.3),
    "fea": (2.0, 3.4, 2.2), "sur": (3.4, 3.6, 2.9), "dis": (1.8, 3.1, 3.4),
    "oth": (2.9, 2.8, 2.8),
}

# Which codes a dissenting evaluator tends to pick instead (IEMOCAP's common confusions).
CONFUSIONS: dict[str, tuple[str, ...]] = {
    "neu": ("fru", "sad", "hap", "exc"), "hap": ("exc", "neu", "sur"),
    "exc": ("hap", "sur", "neu"), "ang": ("fru", "dis", "exc"), "sad": ("neu", "fru", "fea"),
    "fru": ("ang", "neu", "sad"), "fea": ("sur", "sad", "fru"), "sur": ("exc", "hap", "fea"),
    "dis": ("ang", "fru"), "oth": ("neu", "fru"),
}
EMOTIONS = tuple(EMOTION_PROSODY)  # every code but xxx
PEAK_LEVEL = 0.98  # highest sample magnitude written (full scale is 1): the corpus never clips

# Dialogs of one session in the order the corpus sizes take them; (marker actor, dialog suffix). The
# first five cover all three scripts and a suffixed improvisation; the first ten alternate the
# marker actor. Script dialogs with the same name say the same lines everywhere.
DIALOG_ORDER: tuple[tuple[str, str], ...] = (
    ("F", "impro01"), ("M", "script01_1"), ("F", "script02_1"), ("M", "script03_1"),
    ("F", "impro05a"), ("M", "impro03"), ("F", "script01_2"), ("M", "script02_2"),
    ("F", "impro07"), ("M", "impro05b"),
    ("F", "impro02"), ("M", "impro01"), ("F", "script01_3"), ("M", "script03_2"),
    ("F", "impro04"), ("M", "impro06"), ("F", "impro08"), ("M", "script01_2"),
    ("F", "script03_1"), ("M", "impro02"), ("F", "impro03"), ("M", "script02_1"),
    ("F", "impro06"), ("M", "impro04"), ("F", "script01_1"), ("M", "impro07"),
    ("F", "script02_2"), ("M", "impro08"), ("F", "impro05b"), ("M", "script01_3"),
    ("F", "script03_2"), ("M", "impro05a"),
)

# Per session: (female voice, male voice, female base pitch, male base pitch, base rate).
SPEAKER_VOICES: tuple[tuple[str, str, int, int, int], ...] = (
    ("en-us+f2", "en-us+m3", 68, 38, 170),
    ("en+f3", "en-us+m1", 62, 30, 160),
    ("en-us+f4", "en+m2", 72, 42, 180),
    ("en-us+f1", "en-us+m7", 65, 34, 165),
    ("en+f5", "en-us+m4", 70, 40, 175),
)


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. ``utts_per_dialog`` is the mean; scripted dialogs all get that many
    lines, improvised ones vary by up to ``impro_jitter`` (fraction)."""

    n_sessions: int = 5
    dialogs: tuple[tuple[str, str], ...] = DIALOG_ORDER[:10]
    utts_per_dialog: int = 40
    impro_jitter: float = 0.25
    label_weights: dict[str, float] = field(default_factory=lambda: dict(IEMOCAP_COUNTS))
    script_repeat: float = 0.8  # P(a scripted performance repeats the line's canonical label)
    # P(cue channel) for labelled utterances: prosody and words, prosody only, words only, none.
    channel_probs: tuple[float, float, float, float] = (0.35, 0.25, 0.2, 0.2)
    prosody_noise: float = 0.45  # utterance-level random variation, in units of the neu->hap gap
    confuser_prob: float = 0.15  # P(an improvised line adds a phrase of another emotion)
    script_cue_probs: tuple[float, float, float] = (0.45, 0.45, 0.1)  # P(0/1/2 cue phrases)
    snr_db: tuple[float, float] = (10.0, 35.0)
    gain_db: tuple[float, float] = (-4.0, 4.0)
    laughter_prob: float = 0.02  # per utterance, higher for hap/exc
    extra_transcript_prob: float = 0.15  # per dialog: one non-utterance line (e.g. ..._FXX0)
    visual_dim: int = 32
    visual_fps: float = 3.0
    workers: int = 0  # worker processes; 0 = min(cpu count, 4)

    def __post_init__(self) -> None:
        if not 1 <= self.n_sessions <= 5:
            raise ValueError(f"n_sessions must be 1..5, got {self.n_sessions}")
        if self.utts_per_dialog < 2:
            raise ValueError(f"utts_per_dialog must be >= 2, got {self.utts_per_dialog}")
        bad = set(self.label_weights) - set(EMOTIONS) - {"xxx"}
        if bad:
            raise ValueError(f"label_weights has unknown codes {sorted(bad)}")
        if abs(sum(self.channel_probs) - 1) > 1e-6:
            raise ValueError(f"channel_probs must sum to 1, got {self.channel_probs}")

    @property
    def n_utterances(self) -> int:
        """Exact number of utterances this config generates (for any seed)."""
        return sum(len(d.turns) for d in _dialog_skeletons(self))


CORPUS_SIZES: dict[str, SynthConfig] = {
    "smoke": SynthConfig(dialogs=DIALOG_ORDER[:5], utts_per_dialog=8),
    "demo": SynthConfig(dialogs=DIALOG_ORDER[:10], utts_per_dialog=40),
    "full": SynthConfig(dialogs=DIALOG_ORDER, utts_per_dialog=63),
}


# --------------------------------------------------------------------------------------------
# Planning: everything random except the audio is decided here, in one seeded pass.


@dataclass
class UttPlan:
    utt_id: str
    speaker_letter: str
    text: str  # transcript as written (may hold a [LAUGHTER] tag)
    label: str  # majority code or xxx
    expressed: str  # emotion the voice/words/face carry (for xxx: one of the votes)
    votes: list[list[str]]  # per evaluator E1..E3, one or two codes
    vad: list[tuple[int, int, int | None]]  # per evaluator ratings
    voice: str = ""
    prosody: tuple[int, int, int, int, int] = (175, 50, 50, 100, 0)
    visual_strength: float = 0.0
    seed: int = 0


@dataclass
class DialogPlan:
    session: int
    name: str  # e.g. Ses01F_impro05a
    kind: str  # improvised | scripted
    turns: list[tuple[str, int]]  # (speaker letter, script line index or -1)
    utts: list[UttPlan] = field(default_factory=list)
    extra_line: tuple[str, str] | None = None  # (id, text) of a non-utterance transcript line
    seed: int = 0


def _dialog_skeletons(cfg: SynthConfig) -> list[DialogPlan]:
    """Dialog names and turn structure; deterministic from the config alone."""
    out = []
    for s in range(1, cfg.n_sessions + 1):
        for marker, suffix in cfg.dialogs:
            if suffix == "script01_1" and s == 5 and marker == "F":
                suffix = "script01_1b"  # a retake, as IEMOCAP has: exercises id parsers
            name = f"Ses{s:02d}{marker}_{suffix}"
            kind = "scripted" if suffix.startswith("script") else "improvised"
            h = zlib.crc32(name.encode())
            if kind == "scripted":
                n = cfg.utts_per_dialog
                # Script roles are fixed: even lines belong to the woman's part.
                turns = [("F" if i % 2 == 0 else "M", i) for i in range(n)]
            else:
                j = int(round(cfg.utts_per_dialog * cfg.impro_jitter))
                n = max(2, cfg.utts_per_dialog + (h % (2 * j + 1)) - j) if j else cfg.utts_per_dialog
                rs = np.random.default_rng(h)
                letters, cur = [], "F" if h % 2 else "M"
                for _ in range(n):
                    letters.append(cur)
                    if rs.random() < 0.8:
                        cur = "M" if cur == "F" else "F"
                if len(set(letters)) < 2:  # both actors speak in every dialog
                    letters[-1] = "M" if letters[0] == "F" else "F"
                turns = [(c, -1) for c in letters]
            out.append(DialogPlan(s, name, kind, turns))
    return out


def _exact_counts(weights: dict[str, float], n: int) -> dict[str, int]:
    """Largest-remainder rounding of ``weights`` to integer counts summing to ``n``.

    >>> _exact_counts({"a": 2, "b": 1, "c": 1}, 5)
    {'a': 3, 'b': 1, 'c': 1}
    """
    total = sum(weights.values())
    raw = {k: n * w / total for k, w in weights.items()}
    counts = {k: int(np.floor(v)) for k, v in raw.items()}
    rest = n - sum(counts.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - counts[k]), k))[:rest]:
        counts[k] += 1
    return counts


def _script_key(dialog_suffix: str) -> str:
    """``script01_1b`` -> ``script01_1``: a retake says the same lines."""
    return dialog_suffix[:-1] if dialog_suffix.endswith("b") else dialog_suffix


def _votes(label: str, expressed: str, clarity: float,
           rng: np.random.Generator) -> list[list[str]]:
    """Three evaluators' codes whose majority is ``label`` (all differ when ``label`` is xxx)."""
    if label == "xxx":
        pool = [c for c in CONFUSIONS[expressed] if c != expressed]
        others = list(rng.choice(pool, size=2, replace=False)) if len(pool) >= 2 else pool + ["oth"]
        votes = [[expressed], [str(others[0])], [str(others[1])]]
        order = rng.permutation(3)
        votes = [votes[i] for i in order]
        # Sometimes one evaluator gives two labels; keep every code's count at 1 (no majority).
        if rng.random() < 0.1:
            used = {v[0] for v in votes}
            spare = [c for c in EMOTIONS if c not in used and c != "oth"]
            votes[int(rng.integers(3))].append(str(spare[int(rng.integers(len(spare)))]))
        return votes
    agree = 3 if rng.random() < 0.3 + 0.5 * clarity else 2
    dissent = str(CONFUSIONS[label][int(rng.integers(len(CONFUSIONS[label])))])
    votes = [[label]] * agree + [[dissent]] * (3 - agree)
    votes = [list(votes[i]) for i in rng.permutation(3)]
    if rng.random() < 0.08:  # a second label from one evaluator, never creating a tie
        k = int(rng.integers(3))
        extra = str(CONFUSIONS[label][int(rng.integers(len(CONFUSIONS[label])))])
        if extra not in votes[k] and sum(extra in v for v in votes) + 1 < agree:
            votes[k].append(extra)
    return votes


def _pick(rng: np.random.Generator, weights: list[float] | np.ndarray) -> int:
    """Index drawn with probability proportional to ``weights`` (cheaper than rng.choice)."""
    c = np.cumsum(weights)
    return min(int(np.searchsorted(c, rng.random() * c[-1], side="right")), len(c) - 1)


def _clip(x: float, lo: float, hi: float) -> int:
    return int(min(max(x, lo), hi))


def _vad(expressed: str, rng: np.random.Generator) -> list[tuple[int, int, int | None]]:
    mean = np.array(EMOTION_VAD[expressed])
    out = []
    for _ in range(3):
        r = [_clip(round(x), 1, 5) for x in mean + rng.normal(0, 0.7, 3)]
        dom = None if rng.random() < 0.005 else r[2]  # dom is sometimes missing
        out.append((r[0], r[1], dom))
    return out


def plan_corpus(cfg: SynthConfig, seed: int) -> list[DialogPlan]:
    """Decide every dialog, line, label, vote, rating and voice setting (no audio yet)."""
    rng = np.random.default_rng(seed)
    dialogs = _dialog_skeletons(cfg)
    slots = [(d, i) for d in dialogs for i in range(len(d.turns))]
    counts = _exact_counts(cfg.label_weights, len(slots))
    probs = np.array([cfg.label_weights.get(c, 0) for c in EMOTIONS + ("xxx",)], float)
    probs /= probs.sum()

    # Scripts: each line has a canonical code and fixed text, shared by every session.
    script_lines: dict[str, list[tuple[str, str]]] = {}
    for d in dialogs:
        key = _script_key(d.name.split("_", 1)[1])
        if d.kind == "scripted" and key not in script_lines:
            rs = np.random.default_rng([seed, zlib.crc32(key.encode())])
            lines = []
            for _ in range(len(d.turns)):
                code = str(rs.choice(EMOTIONS + ("xxx",), p=probs))
                cue_code = code if code != "xxx" else str(rs.choice(["neu", "fru", "sad", "hap"]))
                n_cue = int(rs.choice(3, p=cfg.script_cue_probs))
                lines.append((code, txt.make_text(cue_code, n_cue, rs, max_neutral=2)))
            script_lines[key] = lines

    # Labels: draw without replacement from the exact pool, scripted slots preferring the
    # canonical code, in a random slot order so no session is favoured when a code runs out.
    pool = dict(counts)
    labels: dict[tuple[int, int], str] = {}
    for k in rng.permutation(len(slots)):
        d, i = slots[k]
        label = None
        if d.kind == "scripted":
            canon = script_lines[_script_key(d.name.split("_", 1)[1])][i][0]
            if pool.get(canon, 0) > 0 and rng.random() < cfg.script_repeat:
                label = canon
        if label is None:
            codes = [c for c in pool if pool[c] > 0]
            label = codes[_pick(rng, [pool[c] for c in codes])]
        pool[label] -= 1
        labels[(id(d), i)] = label

    base = np.array([175.0, 50, 50, 100, 0])
    for d in dialogs:
        d.seed = int(rng.integers(2**31))
        counters = {"F": 0, "M": 0}
        for i, (letter, line) in enumerate(d.turns):
            label = labels[(id(d), i)]
            utt_id = f"{d.name}_{letter}{counters[letter]:03d}"
            counters[letter] += 1
            mode = _pick(rng, cfg.channel_probs)  # 0 both, 1 prosody, 2 words, 3 none
            if label == "xxx":
                expressed = str(rng.choice(["neu", "fru", "ang", "sad", "hap", "exc"]))
                p_strength, n_cue = rng.uniform(0.0, 0.5), int(rng.random() < 0.3)
            else:
                expressed = label
                p_strength = rng.uniform(0.6, 1.2) if mode in (0, 1) else rng.uniform(0, 0.25)
                n_cue = int(rng.choice([1, 2], p=[0.6, 0.4])) if mode in (0, 2) else 0
            clarity = (mode == 0) * 1.0 + (mode in (1, 2)) * 0.5
            if d.kind == "scripted":
                text = script_lines[_script_key(d.name.split("_", 1)[1])][line][1]
            else:
                conf = None
                if rng.random() < cfg.confuser_prob:
                    conf = str(rng.choice([c for c in EMOTIONS if c != expressed]))
                text = txt.make_text(expressed if expressed != "oth" else "neu", n_cue, rng, conf)
            p_laugh = cfg.laughter_prob * (3 if expressed in ("hap", "exc") else 0.5)
            if rng.random() < p_laugh:
                words = text.split()
                words.insert(int(rng.integers(len(words) + 1)), "[LAUGHTER]")
                text = " ".join(words)
            s = d.session - 1
            fvoice, mvoice, fpitch, mpitch, brate = SPEAKER_VOICES[s]
            spk_base = base + np.array([brate - 175, (fpitch if letter == "F" else mpitch) - 50,
                                        (6 if letter == "F" else -4) + 3 * s, 0, 0])
            gap = np.array([15, 10, 22, 15, 1.5])  # neu -> hap distance per parameter
            p = (spk_base + p_strength * np.array(EMOTION_PROSODY[expressed])
                 + rng.normal(0, cfg.prosody_noise, 5) * gap)
            prosody = (_clip(p[0], 80, 400), _clip(p[1], 0, 99), _clip(p[2], 0, 99),
                       _clip(p[3], 20, 200), _clip(p[4], 0, 30))
            d.utts.append(UttPlan(
                utt_id=utt_id, speaker_letter=letter, text=text, label=label,
                expressed=expressed, votes=_votes(label, expressed, clarity, rng),
                vad=_vad(expressed, rng), voice=fvoice if letter == "F" else mvoice,
                prosody=prosody, visual_strength=float(rng.uniform(0.1, 1.0)),
                seed=int(rng.integers(2**31)),
            ))
        if rng.random() < cfg.extra_transcript_prob:
            letter = str(rng.choice(["F", "M"]))
            d.extra_line = (f"{d.name}_{letter}XX{int(rng.integers(10))}",
                            str(rng.choice(["[BREATHING]", "Mm-hmm.", "[LAUGHTER]", "Uh."])))
    return dialogs


# --------------------------------------------------------------------------------------------
# Rendering: audio, alignment, visual descriptors and the dialog-level text files.

FRAME = 0.01  # .wdseg frame step (s)
SR = 16000
# Words for which Sphinx's dictionary has numbered pronunciation variants (written WORD(2)).
_VARIANT_WORDS = {"THE", "A", "TO", "OF", "AND", "YOU", "FOR", "THAT", "WHAT", "WAS", "IS",
                  "ARE", "YOUR", "CAN", "I'M", "DON'T", "IT'S", "THIS", "AT", "IN"}


def _sphinx_word(token: str) -> str:
    """``"Don't,"`` -> ``"DON'T"``: Sphinx dictionary form (upper case, no punctuation)."""
    return "".join(ch for ch in token.upper() if ch.isalnum() or ch == "'").strip("'")


def _visual_basis(seed: int, dim: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Fixed per corpus: one direction per emotion, one appearance vector per speaker."""
    rng = np.random.default_rng([seed, 0x5715])
    emo = {c: rng.normal(0, 1, dim) for c in EMOTIONS}
    spk = {f"Ses{s:02d}{g}": rng.normal(0, 0.8, dim) for s in range(1, 6) for g in "FM"}
    return emo, spk


def _wdseg(words: list[tuple[str, float, float]], n_frames: int,
           rng: np.random.Generator) -> str:
    """Sphinx-3 word segmentation text: ``<s>``, words, ``<sil>`` for pauses >= 50 ms, ``</s>``.

    Frames are inclusive and contiguous from 0 to ``n_frames - 1``.
    """
    segs: list[tuple[str, int, int]] = []
    cur = 0
    for i, (w, start, end) in enumerate(words):
        s = max(int(round(start / FRAME)), cur)
        e = max(int(round(end / FRAME)) - 1, s)
        e = min(e, n_frames - 2 - (len(words) - 1 - i))  # leave room for later words and </s>
        s = min(s, e)
        if i == 0:
            segs.append(("<s>", 0, s - 1))
        elif s - cur >= 5:
            segs.append(("<sil>", cur, s - 1))
        else:
            s = cur  # a short gap belongs to the word (Sphinx has no zero-length silences)
        segs.append((w, s, e))
        cur = e + 1
    segs.append(("</s>", cur, n_frames - 1))
    lines = ["\t SFrm  EFrm    SegAScr Word"]
    total = 0
    for w, s, e in segs:
        per_frame = rng.uniform(2000, 6000) if w.startswith("<") else rng.uniform(6000, 18000)
        score = -int(round((e - s + 1) * per_frame))
        total += score
        lines.append(f"\t{s:5d} {e:5d} {score:10d} {w}")
    lines.append(f" Total score: {total:11d}")
    return "\n".join(lines) + "\n"


def _render_utterance(u: UttPlan, session: int, dialog_dir: dict[str, Path], cfg: SynthConfig,
                      basis: tuple[dict[str, np.ndarray], dict[str, np.ndarray]]) -> float:
    """Synthesise one utterance and write its .wav, .wdseg and visual .npy; returns seconds."""
    import soundfile as sf

    from workbench.corpus import espeak

    rng = np.random.default_rng(u.seed)
    # Display tokens -> spoken tokens: a [LAUGHTER] tag is voiced as "hah hah".
    spoken, owner = [], []
    for k, tok in enumerate(u.text.split()):
        parts = ["hah", "hah"] if tok.upper() == "[LAUGHTER]" else [tok]
        spoken += parts
        owner += [k] * len(parts)
    rate, pitch, prange, volume, gap = u.prosody
    speech, spans = espeak.synthesize(" ".join(spoken), u.voice, rate, pitch, prange, volume, gap,
                                      seed=u.seed)
    lead, trail = rng.uniform(0.15, 0.45), rng.uniform(0.12, 0.35)
    n_lead, n_trail = int(lead * SR), int(trail * SR)
    audio = np.concatenate([np.zeros(n_lead, np.float32), speech, np.zeros(n_trail, np.float32)])
    audio *= 10 ** (rng.uniform(*cfg.gain_db) / 20)
    # Background noise: white noise through a one-pole low-pass (brownish hum + hiss mix).
    p_sig = float(np.mean(audio[n_lead:n_lead + len(speech)] ** 2)) + 1e-12
    white = rng.normal(0, 1, len(audio))
    brown = _one_pole(white, 0.97)
    noise = 0.5 * white / white.std() + brown / (brown.std() + 1e-12)
    snr = rng.uniform(*cfg.snr_db)
    noise *= np.sqrt(p_sig / 10 ** (snr / 10) / np.mean(noise**2))
    audio = audio + noise
    # A loud voice with a positive gain can exceed full scale. Clipping it would make every
    # loader warn about clipped samples in the built-in corpus, so such an utterance is scaled
    # down as a whole to just below full scale (the others keep their bytes).
    peak = float(np.max(np.abs(audio)))
    if peak > PEAK_LEVEL:
        audio *= PEAK_LEVEL / peak
    pcm = np.round(audio * 32767).astype(np.int16)
    n_frames = len(pcm) // int(FRAME * SR)

    # Word spans per display token (tag spans merged), shifted by the leading silence.
    words: list[tuple[str, float, float]] = []
    tokens = u.text.split()
    for k, tok in enumerate(tokens):
        own = [sp for sp, o in zip(spans, owner) if o == k]
        if not own:
            continue
        w = "++LAUGHTER++" if tok.upper() == "[LAUGHTER]" else _sphinx_word(tok)
        if not w:
            continue
        if w in _VARIANT_WORDS and rng.random() < 0.2:
            w += "(2)"
        words.append((w, own[0].start + n_lead / SR, own[-1].end + n_lead / SR))
    sf.write(dialog_dir["wav"] / f"{u.utt_id}.wav", pcm, SR, subtype="PCM_16")
    (dialog_dir["wdseg"] / f"{u.utt_id}.wdseg").write_text(_wdseg(words, n_frames, rng))

    emo, spk = basis
    dur = len(pcm) / SR
    n_vis = max(1, int(np.ceil(dur * cfg.visual_fps)))
    envelope = np.sin(np.linspace(0.3, np.pi - 0.3, n_vis))[:, None]  # expression peaks mid-turn
    ar = _one_pole(rng.normal(0, 1, (n_vis, cfg.visual_dim)), 0.6, axis=0)
    speaker = f"Ses{session:02d}{u.speaker_letter}"
    vis = (spk[speaker][: cfg.visual_dim] + u.visual_strength * 0.8 * envelope
           * emo[u.expressed][: cfg.visual_dim] + ar)
    np.save(dialog_dir["visual"] / f"{u.utt_id}.npy", vis.astype(np.float32))
    return dur


def _one_pole(x: np.ndarray, alpha: float, axis: int = 0) -> np.ndarray:
    """y[t] = alpha * y[t-1] + (1 - alpha) * x[t] along ``axis`` (scipy's lfilter)."""
    from scipy.signal import lfilter

    return lfilter([1 - alpha], [1, -alpha], x, axis=axis)


def _fmt_eval_block(u: UttPlan, start: float, end: float) -> str:
    vad = np.array([[v if v is not None else np.nan for v in r] for r in u.vad], float)
    mean = np.nanmean(vad, axis=0)
    lines = [f"[{start:.4f} - {end:.4f}]\t{u.utt_id}\t{u.label}\t"
             f"[{mean[0]:.4f}, {mean[1]:.4f}, {mean[2]:.4f}]"]
    for k, codes in enumerate(u.votes, start=1):
        words = " ".join(f"{CODE_TO_IEMOCAP_WORD[c]};" for c in codes)
        lines.append(f"C-E{k}:\t{words}\t()")
    for k, (v, a, d) in enumerate(u.vad, start=1):
        dom = f" dom  {d};" if d is not None else ""
        lines.append(f"A-E{k}:\tval {v}; act {a};{dom}\t()")
    return "\n".join(lines) + "\n"


def _render_dialog(job: tuple[DialogPlan, str, int, SynthConfig]) -> tuple[int, float]:
    """Write one dialog's utterance files and its EmoEvaluation/transcription files."""
    d, root_s, seed, cfg = job
    sess = Path(root_s) / f"Session{d.session}"
    dirs = {"wav": sess / "sentences" / "wav" / d.name,
            "wdseg": sess / "sentences" / "ForcedAlignment" / d.name,
            "visual": sess / "sentences" / "visual" / d.name}
    for p in [*dirs.values(), sess / "dialog" / "EmoEvaluation", sess / "dialog" / "transcriptions"]:
        p.mkdir(parents=True, exist_ok=True)
    basis = _visual_basis(seed, cfg.visual_dim)
    rng = np.random.default_rng([d.seed, 1])
    t = rng.uniform(1.5, 8.0)
    blocks, trans = [], []
    total = 0.0
    for i, u in enumerate(d.utts):
        dur = _render_utterance(u, d.session, dirs, cfg, basis)
        total += dur
        start, end = round(t, 4), round(t + dur, 4)
        blocks.append(_fmt_eval_block(u, start, end))
        trans.append(f"{u.utt_id} [{start:08.4f}-{end:08.4f}]: {u.text}")
        t = end + rng.uniform(0.2, 1.6)
        if d.extra_line is not None and i == len(d.utts) // 2:
            xs, xe = round(t, 4), round(t + 0.4, 4)
            trans.append(f"{d.extra_line[0]} [{xs:08.4f}-{xe:08.4f}]: {d.extra_line[1]}")
            t = xe + rng.uniform(0.2, 0.8)
    header = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
    (sess / "dialog" / "EmoEvaluation" / f"{d.name}.txt").write_text(
        header + "".join(b + "\n" for b in blocks))
    (sess / "dialog" / "transcriptions" / f"{d.name}.txt").write_text("\n".join(trans) + "\n")
    return len(d.utts), total


# A fresh interpreter renders one dialog (see generate_corpus); it gets the caller's sys.path so
# that the workbench imports there as it does here. The job travels as JSON (the corpus config,
# seed, dialog index and folder): the worker plans the corpus again (deterministic, cheap) and
# takes its dialog, so nothing is unpickled.
_WORKER = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
           "from workbench.corpus.synthetic import _render_dialog_from_stdin; _render_dialog_from_stdin()")


def _config_json(config: SynthConfig) -> dict:
    return asdict(config)


def _config_from_json(raw: dict) -> SynthConfig:
    """The inverse of :func:`_config_json` (JSON turns tuples into lists)."""
    def tuples(x: object) -> object:
        return tuple(tuples(v) for v in x) if isinstance(x, list) else x

    return SynthConfig(**{k: tuples(v) for k, v in raw.items()})


def _render_dialog_from_stdin() -> None:
    """The worker's side of :func:`_render_in_fresh_process`: job from stdin, result on stdout's last line."""
    job = json.loads(sys.stdin.buffer.read())
    config = _config_from_json(job["config"])
    plan = plan_corpus(config, job["seed"])[job["index"]]
    result = _render_dialog((plan, job["out"], job["seed"], config))
    print("\n" + json.dumps(result), flush=True)


def _render_in_fresh_process(job: tuple[int, DialogPlan, str, int, SynthConfig]) -> tuple[int, float]:
    """:func:`_render_dialog` of dialog ``job[0]`` in a new Python process; its error output if it fails."""
    index, plan, out, seed, config = job
    payload = json.dumps({"config": _config_json(config), "seed": seed, "index": index, "out": out}).encode()
    proc = subprocess.run([sys.executable, "-c", _WORKER, json.dumps(sys.path)], input=payload, capture_output=True)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-20:]
        raise RuntimeError(f"synthesising dialog {plan.name} of session {plan.session} failed "
                           f"(exit {proc.returncode}):\n" + "\n".join(tail))
    n, seconds = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return int(n), float(seconds)


_README = """\
SYNTHETIC CORPUS - NOT IEMOCAP
==============================

This folder was written by the SER Workbench's built-in generator
(workbench.corpus.synthetic.generate_corpus). It imitates the directory layout and file
formats of IEMOCAP_full_release so that IEMOCAP loaders can read it, but it contains no
IEMOCAP data and no human speech. Results on it say nothing about IEMOCAP.

corpus size: {corpus_size}
seed: {seed}
sessions: {n_sessions}
dialogs: {n_dialogs}
utterances: {n_utts}
audio: {hours:.3f} hours (16 kHz mono PCM16)
majority labels: {counts}

What is simulated:
- speech: espeak-ng (one voice and prosodic baseline per speaker, 5 sessions x 1 F + 1 M);
  emotion is carried by prosody (rate, pitch, pitch range, volume, pauses), by emotion
  phrases from a small grammar, by both, or by neither; random variation, gain and
  background noise at a random SNR are added;
- scripted dialogs (script01..03) say the same lines in every session and mostly repeat
  each line's emotion; improvised dialogs have fresh text per session;
- labels: three simulated evaluators (C-E1..C-E3, A-E1..A-E3); the summary label is their
  majority, xxx when they disagree; V/A/D are means of simulated 1-5 ratings;
- word alignments (.wdseg) come from the synthesiser's word events, not from Sphinx; the
  scores in them are random numbers;
- sentences/visual/<dialog>/<utt>.npy: simulated facial descriptors, float32
  (frames at {fps:g} fps, {dim} dims) = speaker vector + emotion direction x expressiveness
  + noise. There is no video (no dialog/avi).
"""


def generate_corpus(out: str | Path, corpus_size: str = "demo", corpus_seed: int = 0, progress: bool = True,
                    config: SynthConfig | None = None) -> Path:
    """Write the synthetic corpus into ``out/IEMOCAP_full_release`` and return that path.

    ``corpus_size`` is one of :data:`CORPUS_SIZES` (smoke ~200 utterances, demo ~2,000, full
    ~10,000); ``config`` overrides
    it. ``corpus_seed`` fixes every random choice. Files are written to a ``.partial`` folder first and renamed when
    complete; an existing ``IEMOCAP_full_release`` is replaced only if it is a synthetic one
    (it holds ``SYNTHETIC_README.txt``), never a real corpus.
    """
    from tqdm.auto import tqdm

    seed = corpus_seed
    if config is None:
        if corpus_size not in CORPUS_SIZES:
            raise ValueError(f"unknown corpus_size {corpus_size!r}; choose one of {sorted(CORPUS_SIZES)}")
        config = CORPUS_SIZES[corpus_size]
    else:
        corpus_size = "custom"
    out = Path(out)
    root = out / "IEMOCAP_full_release"
    if root.exists() and not (root / "SYNTHETIC_README.txt").is_file():
        raise FileExistsError(f"{root} exists and is not a synthetic corpus; not overwriting it")
    # One partial folder per process: two generations of one corpus at once (two notebooks, a
    # test and a batch) once wrote into one shared partial folder and both failed. A partial
    # folder whose process is gone (killed mid-way) is removed.
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".IEMOCAP_full_release.partial-*"):
        if not _process_alive(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = out / f".IEMOCAP_full_release.partial-{os.getpid()}"
    finished_before = (root / "SYNTHETIC_README.txt").is_file()  # regenerating replaces it
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)

    plans = plan_corpus(config, seed)
    jobs = [(i, p, str(tmp), seed, config) for i, p in enumerate(plans)]
    workers = config.workers or min(os.cpu_count() or 1, 4)
    bar = tqdm(total=len(jobs), disable=not progress, desc="synthesising dialogs", unit="dialog")
    seconds = 0.0
    # libespeak-ng keeps synthesis state between calls (pitch-flutter phase, echo buffers) that
    # re-initialising does not reset, so a call's exact samples depend on every earlier call in
    # the process. Each dialog therefore runs in a fresh interpreter: identical bytes for any
    # worker count. Not a multiprocessing pool: its spawn and forkserver children re-import the
    # caller's main script, and a script without `if __name__ == "__main__":` (the README's
    # quickstart saved as a file) then generated the corpus again in every child, forever.
    pool = ThreadPoolExecutor(workers)
    try:
        for done in as_completed([pool.submit(_render_in_fresh_process, job) for job in jobs]):
            seconds += done.result()[1]
            bar.update()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C or a failure: start no further dialog
        raise
    pool.shutdown()
    bar.close()

    counts: dict[str, int] = {}
    for p in plans:
        for u in p.utts:
            counts[u.label] = counts.get(u.label, 0) + 1
    (tmp / "SYNTHETIC_README.txt").write_text(_README.format(
        corpus_size=corpus_size, seed=seed, n_sessions=config.n_sessions, n_dialogs=len(plans),
        n_utts=sum(counts.values()), hours=round(seconds, 3) / 3600,
        counts=", ".join(f"{c} {counts[c]}" for c in sorted(counts, key=lambda c: -counts[c])),
        fps=config.visual_fps, dim=config.visual_dim))
    if not finished_before and (root / "SYNTHETIC_README.txt").is_file():
        # another process finished the same corpus first (same seed and size: the same bytes)
        shutil.rmtree(tmp, ignore_errors=True)
        return root
    if root.exists():
        shutil.rmtree(root)
    try:
        os.replace(tmp, root)
    except OSError:
        if not (root / "SYNTHETIC_README.txt").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # lost the race to a concurrent generation
    return root


def _process_alive(pid: str) -> bool:
    """Whether process ``pid`` (the suffix of a partial folder) still runs."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def synthetic_root(corpus_size: str = "smoke", corpus_seed: int = 0, data_dir: str | Path | None = None) -> Path:
    """Where the built-in corpus of size ``corpus_size`` (smoke, demo or full) and seed
    ``corpus_seed`` lives; generated on first use."""
    from workbench import paths

    out = Path(data_dir or paths.data_dir()) / f"synthetic-{corpus_size}-seed{corpus_seed}"
    root = out / "IEMOCAP_full_release"
    if not (root / "SYNTHETIC_README.txt").is_file():
        generate_corpus(out, corpus_size=corpus_size, corpus_seed=corpus_seed, progress=True)
    return root


@register_corpus("synthetic", "the built-in IEMOCAP-shaped corpus (espeak-ng speech), generated on first use; "
                 "not IEMOCAP", root=None)
def load_synthetic(root: None = None, data_dir: str | Path | None = None, corpus_size: str = "smoke",
                   corpus_seed: int = 0, **options: Any) -> Manifest:
    """The ``synthetic`` corpus of size ``corpus_size`` and seed ``corpus_seed`` (generated once
    under ``data_dir``), read as IEMOCAP is."""
    from workbench.corpus.iemocap import prepare_iemocap

    return prepare_iemocap(synthetic_root(corpus_size, corpus_seed, data_dir), corpus_name="synthetic", **options)


__all__ = ["SynthConfig", "CORPUS_SIZES", "IEMOCAP_COUNTS", "generate_corpus", "load_synthetic", "plan_corpus", "synthetic_root"]
