"""Self-supervised speech checkpoints with random weights, built from a config: nothing is
downloaded. The tests load them through the same path as a real wav2vec 2.0 / HuBERT / WavLM
checkpoint (``save_pretrained`` layout: ``config.json``, ``model.safetensors`` and the
feature extractor's ``preprocessor_config.json``).

- :func:`tiny_speech_model`: 2 transformer layers of hidden size 32 over a narrow (8-channel)
  convolutional front end with the standard kernels and strides, so the frame period is the
  real models' 320 samples (20 ms at 16 kHz); about 23k parameters, a fraction of a second to
  build.
- :func:`random_base_speech_model`: the base-size architecture (12 layers, hidden 768, the
  512-channel front end; ~95M parameters, ~380 MB saved) for speed and memory measurements.

>>> import tempfile
>>> path = tiny_speech_model(tempfile.mkdtemp())
>>> sorted(p.name for p in path.iterdir())
['config.json', 'model.safetensors', 'preprocessor_config.json']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

Arch = Literal["wav2vec2", "hubert", "wavlm"]
ARCHS: tuple[str, ...] = ("wav2vec2", "hubert", "wavlm")

# The convolutional front end of every base/large wav2vec 2.0, HuBERT and WavLM model:
# receptive field 400 samples, stride 320 (25 ms windows every 20 ms at 16 kHz).
_CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
_CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)


def _config(arch: str, **sizes: Any):
    import transformers

    classes = {"wav2vec2": transformers.Wav2Vec2Config, "hubert": transformers.HubertConfig,
               "wavlm": transformers.WavLMConfig}
    if arch not in classes:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    return classes[arch](conv_kernel=_CONV_KERNEL, conv_stride=_CONV_STRIDE, **sizes)


def _save(model_config, out_dir: str | Path, seed: int) -> Path:
    import torch
    from transformers import AutoModel, Wav2Vec2FeatureExtractor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = AutoModel.from_config(model_config).eval()
    model.save_pretrained(out)
    # As the released base checkpoints ship it: 16 kHz, per-utterance zero-mean unit-variance
    # input; the attention mask only where the front end normalises per frame ("layer").
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=model_config.feat_extract_norm == "layer").save_pretrained(out)
    return out


def tiny_speech_model(out_dir: str | Path, arch: Arch = "wav2vec2", seed: int = 0,
                      feat_extract_norm: Literal["group", "layer"] = "group", layers: int = 2) -> Path:
    """A ``layers``-layer (2), hidden-32 speech encoder of ``arch`` with random weights saved in ``out_dir``.

    ``feat_extract_norm`` is the front end's first normalisation: ``"group"`` (over time, as
    wav2vec 2.0 base / HuBERT base) or ``"layer"`` (per frame, as the large models, which also
    normalise before each transformer block: ``do_stable_layer_norm``)."""
    cfg = _config(arch, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64,
                  conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                  feat_extract_norm=feat_extract_norm, do_stable_layer_norm=feat_extract_norm == "layer",
                  hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
                  layerdrop=0.0, mask_time_prob=0.0)
    return _save(cfg, out_dir, seed)


def random_base_speech_model(out_dir: str | Path, arch: Arch = "wav2vec2", seed: int = 0) -> Path:
    """The base-size ``arch`` (12 layers, hidden 768, 13 hidden states) with random weights."""
    cfg = _config(arch, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                  conv_dim=(512,) * 7, feat_extract_norm="group", do_stable_layer_norm=False)
    return _save(cfg, out_dir, seed)


__all__ = ["ARCHS", "random_base_speech_model", "tiny_speech_model"]
