"""Pepino et al.'s prosody-36: 18 low-level descriptors and their first differences per 10 ms.

The 18 LLDs are pitch, jitter, shimmer, log harmonics-to-noise ratio, loudness and MFCC 1-13.
All of them come from one openSMILE pass over the ComParE_2016 low-level descriptors, chosen
over eGeMAPSv02 because ComParE has every one of them (eGeMAPS stops at MFCC 4), its HNR is
the log HNR Pepino names, and one pass gives one frame grid, so no frame counts need
reconciling between tools:

==================  =============================  ==========================================
LLD                 ComParE_2016 column            unit / note
==================  =============================  ==========================================
pitch               ``F0final_sma``                Hz, 0 in unvoiced frames
jitter              ``jitterLocal_sma``            ratio, 0 in unvoiced frames
shimmer             ``shimmerLocal_sma``           ratio, 0 in unvoiced frames
logHNR              ``logHNR_sma``                 dB (-100 in silence)
loudness            ``audspec_lengthL1norm_sma``   sum of the auditory spectrum (ComParE's
                                                   loudness descriptor)
MFCC 1-13           ``mfcc_sma[1]`` .. ``[13]``    openSMILE MFCC (25 ms window)
==================  =============================  ==========================================

Columns 18-35 are ``x[t] - x[t-1]`` (0 at t = 0). Frame t starts at t * 10 ms (openSMILE's
frame grid; the pitch window is 60 ms, so a clip gets ``(samples - 960) // 160 + 2`` frames
and clips shorter than 60 ms are zero-padded to it by :func:`load_audio`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from workbench.corpus.manifest import Utterance
from workbench.features.audio_io import AudioWarning, load_audio
from workbench.features.base import Extractor, ExtractorConfig, register_extractor

LLD_COLUMNS = (
    "F0final_sma",
    "jitterLocal_sma",
    "shimmerLocal_sma",
    "logHNR_sma",
    "audspec_lengthL1norm_sma",
    *(f"mfcc_sma[{i}]" for i in range(1, 14)),
)
LLD_NAMES = ("pitch", "jitter", "shimmer", "logHNR", "loudness", *(f"mfcc{i}" for i in range(1, 14)))
FEATURE_NAMES = LLD_NAMES + tuple(f"d_{n}" for n in LLD_NAMES)
_MIN_SECONDS = 0.06  # ComParE's pitch window: shorter clips give openSMILE an empty (NaN) frame


@dataclass(frozen=True)
class Prosody36Config(ExtractorConfig):
    sample_rate: int = 16000


@lru_cache(maxsize=1)
def _smile():
    # Building the openSMILE graph costs ~0.1 s; one per process is enough (it is reentrant per call).
    import opensmile

    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.ComParE_2016, feature_level=opensmile.FeatureLevel.LowLevelDescriptors
    )


def prosody_lld(y: np.ndarray, sr: int = 16000, name: str = "signal") -> np.ndarray:
    """The 18 LLDs of a float32 mono signal: (frames, 18), columns as :data:`LLD_NAMES`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Segment too short": handled below
        df = _smile().process_signal(np.asarray(y, dtype=np.float32), sr)
    lld = df[list(LLD_COLUMNS)].to_numpy(dtype=np.float32)
    bad = ~np.isfinite(lld)
    if bad.any():
        # openSMILE marks frames it could not analyse with NaN; they carry no information.
        warnings.warn(f"utterance {name!r}: {int(bad.any(axis=1).sum())} prosody frame(s) not analysable, set to 0", AudioWarning, stacklevel=2)
        lld[bad] = 0.0
    return lld


def add_first_differences(x: np.ndarray) -> np.ndarray:
    """(T, D) -> (T, 2D): x followed by x[t] - x[t-1] (zeros in the first row).

    >>> add_first_differences(np.array([[1.0], [3.0], [2.0]])).tolist()
    [[1.0, 0.0], [3.0, 2.0], [2.0, -1.0]]
    """
    d = np.zeros_like(x)
    d[1:] = np.diff(x, axis=0)
    return np.concatenate([x, d], axis=1)


@register_extractor("prosody36")
class Prosody36(Extractor):
    """Pepino et al. (2020) prosody LLDs + first differences per 10 ms: float32 (frames, 36)."""

    config_cls = Prosody36Config
    source = "audio"

    @property
    def frame_seconds(self) -> float:
        return 0.01

    @property
    def dim(self) -> int:
        return 36

    def extract(self, utt: Utterance) -> np.ndarray:
        y = load_audio(utt, self.config.sample_rate, min_seconds=_MIN_SECONDS)
        return add_first_differences(prosody_lld(y, self.config.sample_rate, utt.id)).astype(np.float32)
