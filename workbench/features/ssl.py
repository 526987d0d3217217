"""Hidden states of a self-supervised speech encoder (wav2vec 2.0, HuBERT, WavLM, ...) as features.

``ssl_layers`` runs any Hugging Face ``AutoModel`` audio checkpoint with a convolutional front
end (a local ``save_pretrained`` directory or a name in the Hugging Face cache, see
:mod:`workbench.features.checkpoints`) and stores the hidden states the config selects,
concatenated per frame: float32 ``(frames, n_layers * hidden)`` at the model's frame period
(320 samples, 20 ms at 16 kHz, for every base/large model), layer ``layers[0]`` first. Index 0
is the transformer's input (the projected CNN features after the positional convolution),
index i the output of transformer layer i: Hugging Face's ``output_hidden_states``. This is
what the SUPERB / EmoBox downstream models read (a learned weighted sum of all layers).

How the audio becomes frames:

- audio is read at the sample rate of the checkpoint's feature extractor
  (``preprocessor_config.json``); files at another rate are resampled (soxr, as every
  extractor) and ONE warning per rate says so (the feature cache merges them into one summary
  per extraction);
- the feature extractor's per-utterance normalisation (``do_normalize``: zero mean, unit
  variance) is applied to the whole utterance, before any chunking;
- utterances longer than ``chunk_seconds`` are cut into chunks of that many frames, each
  encoded with ``chunk_context_seconds`` of audio on either side whose frames are dropped;
  the chunks' frames are concatenated. Chunk borders fall on the model's frame grid (a chunk
  starting at frame a starts at sample ``a * stride`` and ends one receptive field after its
  last frame's start), so the result has exactly the unchunked frame count and frame times.
  What it equals exactly: frames ``[a, b)`` are the frames ``[a - lo, b - lo)`` of the model
  run on samples ``[lo * stride, (hi - 1) * stride + receptive_field)`` of the normalised
  utterance, ``lo = max(0, a - context)``, ``hi = min(frames, b + context)``. It differs from
  one pass over the whole utterance because attention then sees all of it (and a ``group``
  normalised front end, wav2vec 2.0 base / HuBERT base, normalises over the whole input);
  the chunking is what keeps memory bounded on long utterances (attention is quadratic);
- only the transformer layers up to the deepest selected one run (hidden state k is the output
  of layer k), so a subset of early layers also costs less to extract;
- with a GPU the model runs there. Checkpoints whose feature extractor asks for an attention
  mask (front end normalised per frame: the large models, WavLM large) run padded batches of
  similar length with the mask, which leaves each utterance's frames unchanged; the others
  (``group`` normalisation over time, where padding would change the statistics, so their
  checkpoints ship without an attention mask) run one utterance (chunk) at a time.

A checkpoint is required (``checkpoint=""`` is an error): the workbench ships no speech
weights. The feature cache names the store by the config and the checkpoint's weights hash
(``Extractor.store_key``), so features of two checkpoints never mix.
"""

from __future__ import annotations

import json
import threading
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from workbench.corpus.manifest import Utterance
from workbench.errors import WorkbenchError
from workbench.features.audio import device_name
from workbench.features.audio_io import AudioWarning, load_audio
from workbench.features.base import Extractor, ExtractorConfig, register_extractor
from workbench.features.checkpoints import Checkpoint, CheckpointError, resolve_checkpoint

_NAME = "ssl_layers"


class SslConfigError(WorkbenchError, ValueError):
    """An ``ssl_layers`` setting that does not fit the checkpoint; the message names the parameter."""


@dataclass(frozen=True)
class SslLayersConfig(ExtractorConfig):
    """``checkpoint``: a local ``save_pretrained`` directory or a Hugging Face checkpoint name
    (required). ``layers``: hidden-state indices to store (0 = the CNN/embedding output, i =
    transformer layer i), None for all of them. ``chunk_seconds``: longest stretch encoded in
    one pass; ``chunk_context_seconds``: audio added on either side of a chunk and dropped.
    ``device`` ("auto": CUDA when present) and ``batch_size`` do not change the values and are
    not part of the cache key."""

    checkpoint: str = ""
    layers: tuple[int, ...] | None = None
    chunk_seconds: float = 20.0
    chunk_context_seconds: float = 1.0
    device: str = "auto"
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.layers is not None:  # a recipe read back from JSON holds a list
            object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))
        if not self.chunk_seconds > 0:
            raise SslConfigError(f"extractor {_NAME!r}: chunk_seconds must be positive, got {self.chunk_seconds}")
        if not self.chunk_context_seconds >= 0:
            raise SslConfigError(f"extractor {_NAME!r}: chunk_context_seconds must be >= 0, "
                                 f"got {self.chunk_context_seconds}")
        if self.batch_size < 1:
            raise SslConfigError(f"extractor {_NAME!r}: batch_size must be >= 1, got {self.batch_size}")

    def to_json(self) -> str:
        # Runtime-only fields stay out of the cache key: a GPU run reuses a CPU run's features.
        d = json.loads(super().to_json())
        d.pop("device")
        d.pop("batch_size")
        return json.dumps(d, sort_keys=True)


@dataclass(frozen=True)
class SpeechEncoderInfo:
    """What the extractor needs to know of a checkpoint without running it."""

    checkpoint: Checkpoint
    model_type: str
    hidden_size: int
    n_hidden_states: int  # transformer layers + 1 (the CNN/embedding output)
    sample_rate: int
    stride: int  # samples between frames
    receptive_field: int  # samples one frame sees
    do_normalize: bool
    attention_mask: bool  # batch padded inputs with a mask (front end normalised per frame)
    final_norm: bool  # the last hidden state is layer-normalised after the last layer (stable layer norm)

    @property
    def frame_seconds(self) -> float:
        return self.stride / self.sample_rate

    def frames(self, n_samples: int) -> int:
        """Frames the front end makes of ``n_samples`` samples (0 below one receptive field)."""
        return 0 if n_samples < self.receptive_field else (n_samples - self.receptive_field) // self.stride + 1


def _conv_geometry(kernels: Sequence[int], strides: Sequence[int]) -> tuple[int, int]:
    """(stride, receptive field) in samples of a stack of 1-D convolutions without padding."""
    field = 1
    for k, s in zip(reversed(kernels), reversed(strides)):
        field = (field - 1) * s + k
    return int(np.prod(strides)), field


_INFO: dict[tuple[str, str], SpeechEncoderInfo] = {}
_MODELS: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.Lock()


def speech_encoder_info(checkpoint: str) -> SpeechEncoderInfo:
    """Read a speech checkpoint's config and feature extractor config (no weights are loaded).

    Raises :class:`CheckpointError` naming the checkpoint when it is missing (and how to
    provide it), is not a speech encoder with a convolutional front end (a text model, say), or
    lacks its feature extractor config."""
    ckpt = resolve_checkpoint(checkpoint)
    key = (str(ckpt.path), ckpt.weights_hash)
    with _LOCK:
        if key in _INFO:
            return _INFO[key]
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(ckpt.path, local_files_only=True)
    except Exception as e:  # an unknown model_type, a malformed config.json
        raise CheckpointError(f"checkpoint {checkpoint!r}: cannot read its config.json ({type(e).__name__}: {e})") from e
    kernels, strides = getattr(cfg, "conv_kernel", None), getattr(cfg, "conv_stride", None)
    if not kernels or not strides or not hasattr(cfg, "num_hidden_layers"):
        raise CheckpointError(f"checkpoint {checkpoint!r} is a {getattr(cfg, 'model_type', '?')!r} model, not a "
                              f"self-supervised speech encoder with a convolutional front end (wav2vec 2.0, HuBERT, "
                              f"WavLM, ...): extractor {_NAME!r} cannot read it")
    prep = Path(ckpt.path) / "preprocessor_config.json"
    if not prep.is_file():
        raise CheckpointError(f"checkpoint {checkpoint!r} ({ckpt.path}) has no preprocessor_config.json, so its "
                              "sample rate and input normalisation are unknown; save its feature extractor beside "
                              "it (Wav2Vec2FeatureExtractor(...).save_pretrained)")
    fe = json.loads(prep.read_text())
    stride, field = _conv_geometry(kernels, strides)
    info = SpeechEncoderInfo(
        checkpoint=ckpt, model_type=str(cfg.model_type), hidden_size=int(cfg.hidden_size),
        n_hidden_states=int(cfg.num_hidden_layers) + 1, sample_rate=int(fe.get("sampling_rate", 16000)),
        stride=stride, receptive_field=field, do_normalize=bool(fe.get("do_normalize", True)),
        attention_mask=bool(fe.get("return_attention_mask", False)),
        final_norm=bool(getattr(cfg, "do_stable_layer_norm", True)),
    )
    with _LOCK:
        _INFO[key] = info
    return info


def layers_to_run(info: SpeechEncoderInfo, deepest: int) -> int:
    """Transformer layers needed for hidden states ``0..deepest``: hidden state k is the output of
    layer k, so the layers after it need not run. Where the encoder layer-normalises its last
    output (``do_stable_layer_norm``) hidden state k < the last is the raw output of layer k,
    which only a model with at least k + 1 layers returns unnormalised."""
    n = info.n_hidden_states - 1
    return min(n, deepest + 1) if info.final_norm else min(n, deepest)


def load_speech_encoder(info: SpeechEncoderInfo, device: str, keep_layers: int | None = None):
    """The checkpoint's ``AutoModel`` in eval mode on ``device``, loaded once per process; with
    ``keep_layers`` only its first transformer layers (see :func:`layers_to_run`)."""
    keep = info.n_hidden_states - 1 if keep_layers is None else keep_layers
    key = (str(info.checkpoint.path), info.checkpoint.weights_hash, device, keep)
    with _LOCK:
        if key not in _MODELS:
            from transformers import AutoModel

            from workbench.features.checkpoints import no_loading_bars

            try:
                with no_loading_bars():  # the cache's own bar reports progress
                    model = AutoModel.from_pretrained(info.checkpoint.path, local_files_only=True)
            except Exception as e:
                raise CheckpointError(f"checkpoint {info.checkpoint.name!r}: cannot load its weights "
                                      f"({type(e).__name__}: {e})") from e
            if getattr(model, "main_input_name", "") != "input_values":
                raise CheckpointError(f"checkpoint {info.checkpoint.name!r} loads as {type(model).__name__}, which "
                                      f"does not read raw audio; extractor {_NAME!r} needs a speech encoder")
            blocks = getattr(getattr(model, "encoder", None), "layers", None)
            if blocks is not None and keep < len(blocks):
                # hidden states past the deepest requested one are never used: do not compute them
                model.encoder.layers = type(blocks)(list(blocks)[:keep])
            _MODELS[key] = model.to(device).eval()
        return _MODELS[key]


def normalise_waveform(y: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance, as ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does it."""
    y = np.asarray(y, dtype=np.float32)
    return ((y - y.mean()) / np.sqrt(y.var() + 1e-7)).astype(np.float32)


@dataclass(frozen=True)
class _Piece:
    """One forward pass: samples [start, end) of utterance ``utt``; its frames [keep_from,
    keep_to) go to the utterance's frames starting at ``dest``."""

    utt: int
    start: int
    end: int
    keep_from: int
    keep_to: int
    dest: int


def plan_chunks(n_samples: int, info: SpeechEncoderInfo, chunk_frames: int, context_frames: int) -> list[tuple[int, int, int, int, int]]:
    """The passes that encode ``n_samples`` samples: (start, end, keep_from, keep_to, dest) each.

    One pass when the utterance has at most ``chunk_frames`` frames; otherwise chunks of
    ``chunk_frames`` frames with ``context_frames`` frames of context on either side, aligned
    on the frame grid (see the module docstring)."""
    total = info.frames(n_samples)
    if total <= chunk_frames:
        return [(0, n_samples, 0, total, 0)]
    out = []
    for a in range(0, total, chunk_frames):
        b = min(total, a + chunk_frames)
        lo, hi = max(0, a - context_frames), min(total, b + context_frames)
        out.append((lo * info.stride, (hi - 1) * info.stride + info.receptive_field, a - lo, b - lo, a))
    return out


@register_extractor(_NAME)
class SslLayers(Extractor):
    """Hidden states of a self-supervised speech encoder, concatenated: (frames, len(layers) * hidden).

    See the module docstring. ``frame_seconds`` is the model's frame period (0.02 s for every
    wav2vec 2.0 / HuBERT / WavLM checkpoint at 16 kHz); ``n_layers`` the number of hidden
    states stored, which a model reading the features needs to split them (``ssl_baseline``'s
    ``n_layers``)."""

    config_cls = SslLayersConfig
    cpu_preparation = {"pool": 2, "normalise": "speaker"}
    source = "audio"
    batched = True  # the cache hands it many utterances at once, in this process (GPU or torch threads)
    needs_checkpoint = True

    @property
    def batch_size(self) -> int:  # the config's: it does not change the values
        return self.config.batch_size

    def __init__(self, config: ExtractorConfig | None = None):
        super().__init__(config)
        cfg = self.config
        if not cfg.checkpoint:
            raise CheckpointError(f"extractor {_NAME!r} needs a speech encoder checkpoint: set its 'checkpoint' to a "
                                  "local directory written by save_pretrained, or to the name of a checkpoint in the "
                                  "Hugging Face cache (`workbench train --speech-encoder NAME_OR_DIR`)")
        # Fail at construction: a wrong checkpoint or layer index surfaces before any audio is read.
        info = self.info
        if cfg.layers is not None:
            n = info.n_hidden_states
            bad = [i for i in cfg.layers if not 0 <= i < n]
            if not cfg.layers or bad or len(set(cfg.layers)) != len(cfg.layers):
                what = f"{bad} out of range" if bad else ("empty" if not cfg.layers else f"{list(cfg.layers)} has repeats")
                raise SslConfigError(f"extractor {_NAME!r}: layers {what}; checkpoint {cfg.checkpoint!r} has {n} "
                                     f"hidden states, valid indices 0..{n - 1} (0 = the CNN/embedding output), "
                                     "each at most once, or layers=None for all")

    @cached_property
    def info(self) -> SpeechEncoderInfo:
        return speech_encoder_info(self.config.checkpoint)

    @property
    def layers(self) -> tuple[int, ...]:
        """Hidden-state indices stored, in order."""
        return self.config.layers if self.config.layers is not None else tuple(range(self.info.n_hidden_states))

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def frame_seconds(self) -> float:
        return self.info.frame_seconds

    @property
    def dim(self) -> int:
        return self.n_layers * self.info.hidden_size

    @property
    def min_seconds(self) -> float:
        return self.info.receptive_field / self.info.sample_rate  # one frame

    def extract(self, utt: Utterance) -> np.ndarray:
        return self.extract_batch([utt])[0]

    def extract_batch(self, utts: Sequence[Utterance]) -> list[np.ndarray]:
        info = self.info
        self._warn_resampling(utts)
        ys = [load_audio(u, info.sample_rate, self.min_seconds) for u in utts]
        return self.compute(ys)

    def _warn_resampling(self, utts: Sequence[Utterance]) -> None:
        """One AudioWarning per foreign sample rate (the same text for every batch, so the
        feature cache's summary of an extraction holds it once)."""
        import soundfile as sf

        rates: set[int] = set()
        for u in utts:
            try:
                rates.add(int(sf.info(str(u.audio_path)).samplerate))
            except Exception:  # unreadable: load_audio raises the error naming the utterance
                pass
        sr = self.info.sample_rate
        for r in sorted(rates - {sr}):
            warnings.warn(f"{_NAME}: audio at {r} Hz resampled to {sr} Hz, the sample rate checkpoint "
                          f"{self.config.checkpoint!r} expects", AudioWarning, stacklevel=2)

    def compute(self, ys: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Features of already-loaded clips at the checkpoint's sample rate (order preserved)."""
        import torch

        info, cfg = self.info, self.config
        device = device_name(cfg.device)
        layers = list(self.layers)
        model = load_speech_encoder(info, device, layers_to_run(info, max(layers)))
        chunk = max(1, round(cfg.chunk_seconds / info.frame_seconds))
        context = round(cfg.chunk_context_seconds / info.frame_seconds)
        waves = [normalise_waveform(y) if info.do_normalize else np.asarray(y, np.float32) for y in ys]
        pieces = [_Piece(i, *p) for i, y in enumerate(waves) for p in plan_chunks(len(y), info, chunk, context)]
        out = [np.empty((info.frames(len(y)), self.dim), np.float32) for y in waves]
        # Padded batches only where the checkpoint takes an attention mask (see the module doc).
        batch = cfg.batch_size if info.attention_mask else 1
        order = sorted(range(len(pieces)), key=lambda k: pieces[k].end - pieces[k].start)
        with torch.inference_mode():
            for b0 in range(0, len(order), batch):
                group = [pieces[k] for k in order[b0:b0 + batch]]
                longest = max(p.end - p.start for p in group)
                x = torch.zeros(len(group), longest)
                mask = torch.zeros(len(group), longest, dtype=torch.long)
                for r, p in enumerate(group):
                    x[r, : p.end - p.start] = torch.from_numpy(waves[p.utt][p.start:p.end])
                    mask[r, : p.end - p.start] = 1
                kwargs = {"attention_mask": mask.to(device)} if info.attention_mask else {}
                res = model(x.to(device), output_hidden_states=True, **kwargs)
                hidden = torch.cat([res.hidden_states[i] for i in layers], dim=-1).float().cpu().numpy()
                for r, p in enumerate(group):
                    n = p.keep_to - p.keep_from
                    out[p.utt][p.dest:p.dest + n] = hidden[r, p.keep_from:p.keep_to]
        return out


__all__ = ["SslConfigError", "SslLayers", "SslLayersConfig", "SpeechEncoderInfo", "layers_to_run", "load_speech_encoder",
           "normalise_waveform", "plan_chunks", "speech_encoder_info"]
