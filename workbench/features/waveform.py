"""Raw waveform input of Krishna & Patil's cross-modal attention model (``cma_raw``).

16 kHz mono samples, cropped to the first ``max_seconds`` (10 s) and, when ``pad`` is true,
zero-padded to exactly that length, returned as (samples, 1) so the waveform obeys the same
2-D (steps, dim) contract as every other feature, with ``frame_seconds = 1 / 16000``.

Padding hides where the speech ends, so the extractor also reports each utterance's true
(cropped, unpadded) length through :meth:`Waveform.valid_length`; the cache stores it and
``FeatureSet.valid_lengths`` gives it back for building masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.corpus.manifest import Utterance
from workbench.features.audio_io import audio_frames, load_audio
from workbench.features.base import Extractor, ExtractorConfig, register_extractor


@dataclass(frozen=True)
class WaveformConfig(ExtractorConfig):
    sample_rate: int = 16000
    max_seconds: float = 10.0
    pad: bool = True  # pad every clip to max_seconds (Krishna); False keeps the cropped length


@register_extractor("waveform")
class Waveform(Extractor):
    """16 kHz samples, first 10 s, zero-padded to 10 s: float32 (160000, 1)."""

    config_cls = WaveformConfig
    cpu_preparation = {"config": {"pad": False, "max_seconds": 4.0}, "normalise": "speaker"}
    source = "audio"

    @property
    def max_samples(self) -> int:
        return int(round(self.config.max_seconds * self.config.sample_rate))

    @property
    def frame_seconds(self) -> float:
        return 1.0 / self.config.sample_rate

    @property
    def dim(self) -> int:
        return 1

    def extract(self, utt: Utterance) -> np.ndarray:
        y = load_audio(utt, self.config.sample_rate)[: self.max_samples]
        if self.config.pad and len(y) < self.max_samples:
            y = np.pad(y, (0, self.max_samples - len(y)))
        return y[:, None].astype(np.float32, copy=False)

    def valid_length(self, utt: Utterance) -> int:
        """Samples of real audio in :meth:`extract`'s output (the rest is padding)."""
        return min(audio_frames(utt, self.config.sample_rate), self.max_samples)
