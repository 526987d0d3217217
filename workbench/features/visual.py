"""Per-frame visual descriptors read from ``.npy`` files stored with the corpus.

The default (synthetic) corpus stores SIMULATED descriptors, 3 frames per second, one file per
utterance beside its wav, IEMOCAP style::

    <SessionN>/sentences/wav/<dialog>/<utt>.wav
    <SessionN>/sentences/visual/<dialog>/<utt>.npy     (float, shape (frames, dim))

For real data, put any per-frame descriptor (e.g. facial action units or a face-crop CNN
embedding) in a ``.npy`` per utterance and name it in ``utt.extra["visual_path"]``; set
``frame_seconds`` to its frame period.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.corpus.manifest import Utterance
from workbench.errors import WorkbenchError
from workbench.features.base import Extractor, ExtractorConfig, register_extractor


class VisualFeatureError(WorkbenchError, ValueError):
    """A visual descriptor file is missing or malformed; the message names utterance and path."""


def visual_path(utt: Utterance) -> Path:
    """Where ``utt``'s descriptor file is: ``extra["visual_path"]`` or derived from the wav.

    An explicit path must name a ``.npy`` file and may not climb with ``..``: a relative one is
    taken from the wav's folder and must stay inside it. An absolute one is the manifest's own
    choice, trusted as much as the absolute ``audio_path`` beside it
    (:func:`workbench.features.iemocap_video.extract_iemocap_video` writes absolute paths into any
    ``out_dir``); it is read with ``allow_pickle=False``.

    >>> from workbench.testing.dummies import make_utterance
    >>> u = make_utterance(audio_path="C/Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav")
    >>> visual_path(u).as_posix()
    'C/Session1/sentences/visual/Ses01F_impro01/Ses01F_impro01_F000.npy'
    """
    explicit = (utt.extra or {}).get("visual_path")
    if explicit:
        return _checked_explicit(utt, str(explicit))
    audio = Path(utt.audio_path)
    parts = list(audio.parts)
    # Replace the LAST "sentences/wav" pair, so a root that happens to contain "wav" is kept.
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "sentences" and parts[i + 1] == "wav":
            parts[i + 1] = "visual"
            return Path(*parts).with_suffix(".npy")
    raise VisualFeatureError(
        f"{utt.id}: cannot locate visual descriptors: audio path {utt.audio_path} is not under "
        f"'sentences/wav/' and utt.extra has no 'visual_path'")


def _checked_explicit(utt: Utterance, value: str) -> Path:
    path = Path(value)
    if path.suffix != ".npy" or ".." in path.parts:
        raise VisualFeatureError(f"{utt.id}: extra['visual_path'] {value!r} must name a .npy file without '..'; "
                                 "fix the manifest")
    if path.is_absolute():
        return path
    return Path(utt.audio_path).parent / path


@dataclass(frozen=True)
class VisualConfig(ExtractorConfig):
    frame_seconds: float = 1 / 3  # frame period of the stored descriptors (3 fps by default)
    dim: int | None = None  # expected descriptor size; None = take it from the first file read


@register_extractor("visual")
class Visual(Extractor):
    """Stored per-frame visual descriptors: float32 ``(frames, dim)`` at ``frame_seconds``."""

    config_cls = VisualConfig
    source = "visual"
    preparation = {"normalise": "global"}

    def __init__(self, config: ExtractorConfig | None = None):
        super().__init__(config)
        self._dim = self.config.dim

    def source_path(self, utt: Utterance) -> str:
        return str(visual_path(utt))

    @property
    def frame_seconds(self) -> float:
        return float(self.config.frame_seconds)

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise ValueError("visual: dim is not known until a file is read (or set config dim)")
        return self._dim

    def extract(self, utt: Utterance) -> np.ndarray:
        path = visual_path(utt)
        if not path.is_file():
            raise VisualFeatureError(f"{utt.id}: visual descriptor file {path} does not exist")
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise VisualFeatureError(f"{utt.id}: cannot read visual descriptors {path}: {e}") from e
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise VisualFeatureError(
                f"{utt.id}: {path} holds shape {arr.shape}; expected (frames >= 1, dim >= 1)")
        if not np.issubdtype(arr.dtype, np.number):
            raise VisualFeatureError(f"{utt.id}: {path} has non-numeric dtype {arr.dtype}")
        arr = arr.astype(np.float32, copy=False)
        if not np.all(np.isfinite(arr)):
            bad = int(np.sum(~np.isfinite(arr)))
            raise VisualFeatureError(f"{utt.id}: {path} contains {bad} NaN/inf value(s)")
        if self._dim is None:
            self._dim = int(arr.shape[1])
        elif arr.shape[1] != self._dim:
            raise VisualFeatureError(
                f"{utt.id}: {path} has dim {arr.shape[1]}, expected {self._dim}")
        return arr
