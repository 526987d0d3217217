"""Pepino et al.'s prosody-36: 18 low-level descriptors per 10 ms, and their first differences.

Section 2.2: "Each speaker utterance was divided into 32ms segments, using a hop length of
10ms. The following acoustic features were extracted from each window using openSMILE:
pitch, jitter, shimmer, logHNR, loudness, and the first 13 MFCCs. These features were
normalized to have a mean of 0 and standard deviation of 1, using the global statistics.
Finally, first-order differences were added for all features to form a sequence of
36-dimensional feature vectors".

The extractor computes the 18 LLDs in one openSMILE pass over 32 ms frames every 10 ms
(:data:`LLD_CONFIG`): the components and settings of openSMILE's ComParE_2016 LLDs, whose
list has every one of them (eGeMAPS stops at MFCC 4) and whose HNR is the log HNR Pepino
names, with one framer in place of ComParE's two (60 ms for pitch and voice quality, 20 ms
for the spectral LLDs):

==================  =============================  ==========================================
LLD                 column                         unit / note
==================  =============================  ==========================================
pitch               ``F0final_sma``                Hz, 0 in unvoiced frames (subharmonic
                                                   summation on a Gaussian-windowed frame)
jitter              ``jitterLocal_sma``            ratio, 0 in unvoiced frames
shimmer             ``shimmerLocal_sma``           ratio, 0 in unvoiced frames
logHNR              ``logHNR_sma``                 dB (-100 in silence)
loudness            ``audspec_lengthL1norm_sma``   sum of the auditory spectrum (ComParE's
                                                   loudness descriptor; Hamming window)
MFCC 1-13           ``mfcc_sma[1]`` .. ``[13]``    HTK-style MFCC (Hamming window)
==================  =============================  ==========================================

Two settings are ours. ComParE's voicing cutoff of 0.7 is calibrated for 60 ms windows: on
32 ms ones the subharmonic-summation voicing of a clean 100 Hz harmonic tone is 0.61 (0.67
at 150 Hz) and that of white noise at most 0.49, so the cutoff is 0.55; pitches below about
90 Hz (under three periods per window) are not tracked. ComParE's 3-frame moving average of
each LLD is kept.

The extractor stores the 18 LLDs, not yet normalised: the paper normalises before taking the
differences, and normalisation statistics belong to a training fold. The training inputs
(``FeatureSpec(deltas=True)``, :mod:`workbench.features.normalise`) z-normalise them and then
append the first differences ``x[t] - x[t-1]`` (0 at t = 0), giving the model its 36 columns
(:data:`FEATURE_NAMES`). Frame t starts at t * 10 ms; a clip gets ``(samples - 512) // 160 + 2``
frames, and clips shorter than one window are zero-padded to it by :func:`load_audio`.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from workbench.corpus.manifest import Utterance
from workbench.features.audio_io import AudioWarning, load_audio
from workbench.features.base import Extractor, ExtractorConfig, register_extractor
from workbench.features.normalise import add_first_differences

LLD_COLUMNS = (
    "F0final_sma",
    "jitterLocal_sma",
    "shimmerLocal_sma",
    "logHNR_sma",
    "audspec_lengthL1norm_sma",
    *(f"mfcc_sma[{i}]" for i in range(1, 14)),
)
LLD_NAMES = ("pitch", "jitter", "shimmer", "logHNR", "loudness", *(f"mfcc{i}" for i in range(1, 14)))
#: The model's 36 columns: the normalised LLDs, then their first differences.
FEATURE_NAMES = LLD_NAMES + tuple(f"d_{n}" for n in LLD_NAMES)
WINDOW_SECONDS = 0.032  # section 2.2
HOP_SECONDS = 0.010  # section 2.2

__all__ = ["FEATURE_NAMES", "LLD_COLUMNS", "LLD_CONFIG", "LLD_NAMES", "Prosody36", "Prosody36Config",
           "add_first_differences", "prosody_lld"]

#: The openSMILE configuration (``str.format`` fields ``window_seconds``, ``window_ms``).
LLD_CONFIG = r""";;; Pepino et al. 2020 (sec. 2.2): pitch, jitter, shimmer, logHNR, loudness and MFCC 1-13 from
;;; {window_ms} ms frames every 10 ms. The components and settings of openSMILE's ComParE_2016
;;; LLDs, with one framer in place of ComParE's 60 ms (voicing) and 20 ms (spectral) ones and
;;; the SHS voicing cutoff lowered from 0.7 to 0.55 (see workbench.features.prosody).

[componentInstances:cComponentManager]
instance[dataMemory].type=cDataMemory

\{{\cm[source{{?}}:include external source]}}

[componentInstances:cComponentManager]
instance[pp_frame].type=cFramer
instance[pp_winG].type=cWindower
instance[pp_fftG].type=cTransformFFT
instance[pp_fftmagG].type=cFFTmagphase
instance[pp_winH].type=cWindower
instance[pp_fftH].type=cTransformFFT
instance[pp_fftmagH].type=cFFTmagphase

[pp_frame:cFramer]
reader.dmLevel=wave
writer.dmLevel=pp_frame
writer.levelconf.growDyn = 0
writer.levelconf.isRb = 1
writer.levelconf.nT = 5
frameSize = {window_seconds}
frameStep = 0.010
frameCenterSpecial = left

[pp_winG:cWindower]
reader.dmLevel=pp_frame
writer.dmLevel=pp_winG
winFunc=gauss
gain=1.0
sigma=0.4

[pp_fftG:cTransformFFT]
reader.dmLevel=pp_winG
writer.dmLevel=pp_fftcG
zeroPadSymmetric = 1

[pp_fftmagG:cFFTmagphase]
reader.dmLevel=pp_fftcG
writer.dmLevel=pp_fftmagG

[pp_winH:cWindower]
reader.dmLevel=pp_frame
writer.dmLevel=pp_winH
winFunc=hamming

[pp_fftH:cTransformFFT]
reader.dmLevel=pp_winH
writer.dmLevel=pp_fftcH
zeroPadSymmetric = 1

[pp_fftmagH:cFFTmagphase]
reader.dmLevel=pp_fftcH
writer.dmLevel=pp_fftmagH

;;; pitch: subharmonic summation, Viterbi smoothing, zero where the frame is silent

[componentInstances:cComponentManager]
instance[pp_scale].type=cSpecScale
instance[pp_shs].type=cPitchShs
instance[pp_energyG].type=cEnergy
instance[pp_viterbi].type=cPitchSmootherViterbi
instance[pp_volmerge].type=cValbasedSelector

[pp_scale:cSpecScale]
reader.dmLevel=pp_fftmagG
writer.dmLevel=pp_hpsG
copyInputName = 1
processArrayFields = 0
scale=octave
sourceScale = lin
interpMethod = spline
minF = 25
maxF = -1
nPointsTarget = 0
specSmooth = 1
specEnhance = 1
auditoryWeighting = 1

[pp_shs:cPitchShs]
reader.dmLevel=pp_hpsG
writer.dmLevel=pp_pitchShs
writer.levelconf.growDyn = 0
writer.levelconf.isRb = 1
writer.levelconf.nT = 150
copyInputName = 1
processArrayFields = 0
maxPitch = 620
minPitch = 52
nCandidates = 6
scores = 1
voicing = 1
F0C1 = 0
voicingC1 = 0
F0raw = 1
voicingClip = 1
voicingCutoff = 0.550000
inputFieldSearch = Mag_octScale
octaveCorrection = 0
nHarmonics = 15
compressionFactor = 0.850000
greedyPeakAlgo = 1

[pp_energyG:cEnergy]
reader.dmLevel=pp_winG
writer.dmLevel=pp_eG
writer.levelconf.growDyn = 0
writer.levelconf.isRb = 1
writer.levelconf.nT = 150
rms=1
log=0

[pp_viterbi:cPitchSmootherViterbi]
reader.dmLevel=pp_pitchShs
reader2.dmLevel=pp_pitchShs
writer.dmLevel=pp_pitchViterbi
writer.levelconf.growDyn = 0
writer.levelconf.isRb = 1
writer.levelconf.nT = 150
copyInputName = 1
bufferLength=30
F0final = 1
F0finalEnv = 0
voicingFinalClipped = 0
voicingFinalUnclipped = 1
F0raw = 0
voicingC1 = 0
voicingClip = 0
wTvv =10.0
wTvvd= 5.0
wTvuv=10.0
wThr = 4.0
wTuu = 0.0
wLocal=2.0
wRange=1.0

[pp_volmerge:cValbasedSelector]
reader.dmLevel = pp_eG;pp_pitchViterbi
writer.dmLevel = pp_pitch
writer.levelconf.growDyn = 0
writer.levelconf.isRb = 1
writer.levelconf.nT = 150
idx=0
threshold=0.001
removeIdx=1
zeroVec=1
outputVal=0.0

;;; jitter, shimmer and log HNR from the waveform's pitch periods

[componentInstances:cComponentManager]
instance[pp_jitter].type=cPitchJitter

[pp_jitter:cPitchJitter]
reader.dmLevel = wave
writer.dmLevel = pp_jitterShimmer
writer.levelconf.growDyn = 0
writer.levelconf.isRb = 1
writer.levelconf.nT = 150
copyInputName = 1
F0reader.dmLevel = pp_pitch
F0field = F0final
searchRangeRel = 0.250000
jitterLocal = 1
jitterDDP = 0
jitterLocalEnv = 0
jitterDDPEnv = 0
shimmerLocal = 1
shimmerLocalEnv = 0
onlyVoiced = 0
logHNR = 1
inputMaxDelaySec = 2.0
useBrokenJitterThresh = 0

;;; loudness: L1 norm of the auditory spectrum; MFCC 1-13

[componentInstances:cComponentManager]
instance[pp_melspec].type=cMelspec
instance[pp_audspec].type=cPlp
instance[pp_audspecSum].type=cVectorOperation
instance[pp_melspecMfcc].type=cMelspec
instance[pp_mfcc].type=cMfcc

[pp_melspec:cMelspec]
reader.dmLevel=pp_fftmagH
writer.dmLevel=pp_melspec
htkcompatible = 0
nBands = 26
usePower = 1
lofreq = 20
hifreq = 8000
specScale = mel
showFbank = 0

[pp_audspec:cPlp]
reader.dmLevel=pp_melspec
writer.dmLevel=pp_audspec
firstCC = 0
lpOrder = 5
cepLifter = 22
compression = 0.33
htkcompatible = 0
doIDFT = 0
doLpToCeps = 0
doLP = 0
doInvLog = 0
doAud = 1
doLog = 0
newRASTA=0
RASTA=0

[pp_audspecSum:cVectorOperation]
reader.dmLevel = pp_audspec
writer.dmLevel = pp_audspecSum
copyInputName = 1
processArrayFields = 0
operation = ll1
nameBase = audspec

[pp_melspecMfcc:cMelspec]
reader.dmLevel=pp_fftmagH
writer.dmLevel=pp_melspecMfcc
copyInputName = 1
processArrayFields = 1
htkcompatible = 1
nBands = 26
usePower = 1
lofreq = 20
hifreq = 8000
specScale = mel
inverse = 0

[pp_mfcc:cMfcc]
reader.dmLevel=pp_melspecMfcc
writer.dmLevel=pp_mfcc
copyInputName = 0
processArrayFields = 1
firstMfcc = 1
lastMfcc  = 13
cepLifter = 22.0
htkcompatible = 1

;;; 3-frame moving average, as ComParE (zeros of unvoiced frames left out for pitch and voice quality)

[componentInstances:cComponentManager]
instance[pp_smoNz].type=cContourSmoother
instance[pp_smo].type=cContourSmoother
instance[pp_concat].type=cVectorConcat

[pp_smoNz:cContourSmoother]
reader.dmLevel = pp_pitch;pp_jitterShimmer
writer.dmLevel = pp_lld_nz
writer.levelconf.growDyn = 1
writer.levelconf.isRb = 0
writer.levelconf.nT = 1000
nameAppend = sma
copyInputName = 1
noPostEOIprocessing = 0
smaWin = 3
noZeroSma = 1

[pp_smo:cContourSmoother]
reader.dmLevel = pp_audspecSum;pp_mfcc
writer.dmLevel = pp_lld_sp
writer.levelconf.growDyn = 1
writer.levelconf.isRb = 0
writer.levelconf.nT = 1000
nameAppend = sma
copyInputName = 1
noPostEOIprocessing = 0
smaWin = 3

[pp_concat:cVectorConcat]
reader.dmLevel = pp_lld_nz;pp_lld_sp
writer.dmLevel = lld
includeSingleElementFields = 1

\{{\cm[sink{{?}}:include external sink]}}
"""


@dataclass(frozen=True)
class Prosody36Config(ExtractorConfig):
    sample_rate: int = 16000
    window_seconds: float = WINDOW_SECONDS


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


@lru_cache(maxsize=4)
def _smile(window_seconds: float = WINDOW_SECONDS):
    # Building the openSMILE graph costs ~0.1 s; one per process and window is enough (it is
    # reentrant per call). openSMILE reads its configuration from a file.
    import opensmile

    fd, path = tempfile.mkstemp(prefix="workbench-prosody-", suffix=".conf")
    with os.fdopen(fd, "w") as fh:
        fh.write(LLD_CONFIG.format(window_seconds=window_seconds, window_ms=round(window_seconds * 1000)))
    atexit.register(_remove, path)
    return opensmile.Smile(feature_set=path, feature_level="lld")


def prosody_lld(y: np.ndarray, sr: int = 16000, name: str = "signal",
                window_seconds: float = WINDOW_SECONDS) -> np.ndarray:
    """The 18 LLDs of a float32 mono signal: (frames, 18), columns as :data:`LLD_NAMES`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Segment too short": handled below
        df = _smile(window_seconds).process_signal(np.asarray(y, dtype=np.float32), sr)
    lld = df[list(LLD_COLUMNS)].to_numpy(dtype=np.float32)
    bad = ~np.isfinite(lld)
    if bad.any():
        # openSMILE marks frames it could not analyse with NaN; they carry no information.
        warnings.warn(f"utterance {name!r}: {int(bad.any(axis=1).sum())} prosody frame(s) not analysable, set to 0", AudioWarning, stacklevel=2)
        lld[bad] = 0.0
    return lld


@register_extractor("prosody36")
class Prosody36(Extractor):
    """Pepino et al. (2020) prosody LLDs per 10 ms over 32 ms windows: float32 (frames, 18).
    The model's 36-d input appends their first differences after normalisation
    (``FeatureSpec(deltas=True)``)."""

    config_cls = Prosody36Config
    preparation = {"normalise": "global", "deltas": True}  # normalised, then deltas (Pepino sec. 2.2)
    cpu_preparation = {"pool": 4, "normalise": "speaker"}
    source = "audio"

    @property
    def frame_seconds(self) -> float:
        return HOP_SECONDS

    @property
    def dim(self) -> int:
        return len(LLD_NAMES)

    def extract(self, utt: Utterance) -> np.ndarray:
        c = self.config
        y = load_audio(utt, c.sample_rate, min_seconds=c.window_seconds)
        return prosody_lld(y, c.sample_rate, utt.id, c.window_seconds).astype(np.float32)
