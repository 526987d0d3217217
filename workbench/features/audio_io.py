"""Reading one utterance's audio as float32 mono at a fixed rate, with bad audio handled.

Every audio extractor goes through :func:`load_audio`, so each kind of bad input has one
defined outcome (a warning naming the utterance, or a ``ValueError`` naming it and its file):

==========================  ==========================================================
stereo / multi-channel      averaged to mono, :class:`AudioWarning`
not 16 kHz                  resampled with soxr (high quality), no warning (normal)
silent (all zeros)          returned as zeros with a warning; extractors keep it finite
clipped (>= 0.1 % of the    returned unchanged with a warning (the damage is done, but a
samples at full scale)      researcher should know which utterances carry it)
shorter than ``min_seconds`` zero-padded at the end to ``min_seconds`` with a warning
empty / unreadable          ``ValueError`` naming the utterance id and the file
NaN or infinite samples     :class:`NonFiniteAudioError` (a ``ValueError``) naming both; the
                            feature cache skips the utterance and reports it
==========================  ==========================================================

>>> import numpy as np, soundfile as sf, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "tone.wav"
>>> sf.write(p, 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000), 8000)
>>> y = load_audio(p)
>>> y.dtype, y.shape
(dtype('float32'), (16000,))
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from workbench.corpus.manifest import Utterance
from workbench.errors import WorkbenchError

SAMPLE_RATE = 16000
# Samples at or above this magnitude count as clipped (16-bit full scale is 32767/32768).
_CLIP_LEVEL = 0.999
_CLIP_FRACTION = 0.001
# A file is taken to hold several utterances only when it is this much longer than ``duration``
# (IEMOCAP sentence wavs hold one utterance and their manifest duration is rounded).
_SEGMENT_SLACK_S = 0.05


class UnusableAudioError(WorkbenchError, ValueError):
    """Audio no extractor can use (NaN/infinite samples, no samples at all):
    :class:`~workbench.features.cache.FeatureCache` skips the utterance, names it with the
    reason, and keeps the rest of its batch."""


class NonFiniteAudioError(UnusableAudioError):
    """The audio holds NaN or infinite samples."""


class EmptyAudioError(UnusableAudioError):
    """The audio file (or the utterance's segment of it) holds no samples."""


class AudioWarning(UserWarning):
    """Bad but usable audio (stereo, clipped, silent, too short): the message names the utterance."""


# Audio issues this process has reported: every extractor reads the same files, and one
# clipped file must not be reported once per extractor (five times in notebook 03).
_REPORTED: set[str] = set()


def audio_issues_summary(what: str, messages: Sequence[str], limit: int = 10, verb: str = "") -> str | None:
    """The text of ONE warning about the AudioWarning ``messages`` of a pass over a corpus,
    naming the first ``limit`` issues that this process has not reported yet; None when every
    issue was reported before (by an earlier extractor reading the same files).

    >>> audio_issues_summary("doctest", ["utterance 'a': clipped", "utterance 'b': clipped"], limit=1)
    "doctest: 2 audio issue(s):\\n  utterance 'a': clipped\\n  ... and 1 more"
    >>> audio_issues_summary("again", ["utterance 'a': clipped"]) is None
    True
    """
    unique = list(dict.fromkeys(messages))
    new = [m for m in unique if m not in _REPORTED]
    _REPORTED.update(new)
    if not new:
        return None
    before = f" (and {len(unique) - len(new)} reported above)" if len(new) < len(unique) else ""
    more = f"\n  ... and {len(new) - limit} more" if len(new) > limit else ""
    return f"{what}: {len(new)} audio issue(s){before}{verb}:\n  " + "\n  ".join(new[:limit]) + more


@contextmanager
def summarised_audio_warnings(what: str, limit: int = 10) -> Iterator[None]:
    """Collect the AudioWarnings raised inside and emit ONE warning at the end naming the first
    ``limit`` (a corpus pass would otherwise print a line per clipped utterance), leaving out
    issues already reported (:func:`audio_issues_summary`). Other warnings pass through unchanged.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AudioWarning)
        yield
    messages = []
    for w in caught:
        if issubclass(w.category, AudioWarning):
            messages.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    text = audio_issues_summary(what, messages, limit)
    if text:
        warnings.warn(text, AudioWarning, stacklevel=3)


def _describe(src: Utterance | str | Path) -> tuple[str, Path, float, float | None]:
    """(utterance id or file name, path, start seconds, duration seconds or None)."""
    if isinstance(src, Utterance):
        return src.id, Path(src.audio_path), float(src.start), float(src.duration)
    path = Path(src)
    return path.stem, path, 0.0, None


def load_audio(
    src: Utterance | str | Path,
    sr: int = SAMPLE_RATE,
    min_seconds: float = 0.0,
) -> np.ndarray:
    """One utterance (or a file) as float32 mono samples at ``sr`` Hz, shape (samples,).

    For an :class:`Utterance` whose file is longer than ``start + duration`` (several
    utterances per file, as in MELD-style layouts), only that segment is returned.
    ``min_seconds`` is the shortest signal the caller's extractor can frame (e.g. one window
    plus the delta context); shorter audio is zero-padded to it with a warning.
    """
    import soundfile as sf

    name, path, start, duration = _describe(src)
    try:
        info = sf.info(str(path))
        native_sr = int(info.samplerate)
        first = int(round(start * native_sr))
        last = -1
        if duration is not None and start + duration < info.duration - _SEGMENT_SLACK_S:
            last = first + int(round(duration * native_sr))
        y, _ = sf.read(str(path), start=first, stop=None if last < 0 else last, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError, OSError ...
        raise ValueError(f"utterance {name!r}: cannot read audio file {path} ({e})") from e
    if y.shape[0] == 0:
        raise EmptyAudioError(f"utterance {name!r}: audio file {path} holds no samples (at offset {start} s)")
    if y.shape[1] > 1:
        warnings.warn(f"utterance {name!r}: {y.shape[1]}-channel audio in {path} averaged to mono", AudioWarning, stacklevel=2)
    y = y.mean(axis=1, dtype=np.float32) if y.shape[1] > 1 else y[:, 0]
    if not np.all(np.isfinite(y)):
        raise NonFiniteAudioError(f"utterance {name!r}: audio file {path} contains NaN or infinite samples")
    clipped = float(np.mean(np.abs(y) >= _CLIP_LEVEL))
    if clipped >= _CLIP_FRACTION:
        warnings.warn(f"utterance {name!r}: {clipped:.1%} of samples in {path} are clipped", AudioWarning, stacklevel=2)
    if native_sr != sr:
        import soxr

        y = soxr.resample(y, native_sr, sr, quality="HQ").astype(np.float32, copy=False)
    if not np.any(y):
        warnings.warn(f"utterance {name!r}: audio in {path} is silent (all zeros)", AudioWarning, stacklevel=2)
    need = int(np.ceil(min_seconds * sr))
    if y.shape[0] < need:
        warnings.warn(
            f"utterance {name!r}: {y.shape[0] / sr * 1000:.0f} ms of audio in {path} is shorter than the "
            f"{min_seconds * 1000:.0f} ms this extractor needs; zero-padded",
            AudioWarning,
            stacklevel=2,
        )
        y = np.pad(y, (0, need - y.shape[0]))
    return np.ascontiguousarray(y, dtype=np.float32)


def audio_frames(src: Utterance | str | Path, sr: int = SAMPLE_RATE) -> int:
    """Number of samples :func:`load_audio` returns (before padding), from the file header only."""
    import soundfile as sf

    name, path, start, duration = _describe(src)
    try:
        info = sf.info(str(path))
    except Exception as e:
        raise ValueError(f"utterance {name!r}: cannot read audio file {path} ({e})") from e
    seconds = info.duration - start
    if duration is not None and start + duration < info.duration - _SEGMENT_SLACK_S:
        seconds = duration
    return max(0, int(round(seconds * sr)))
