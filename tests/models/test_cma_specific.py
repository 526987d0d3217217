"""CMA (Krishna 2020) specifics: frame_seconds matches the real downsampling, masks follow
the conv/pool stack, BatchNorm statistics ignore padding in training, input errors."""

from __future__ import annotations

import pytest
import torch

from workbench.models import create_model


def _waveform_inputs(s_lens: list[int], t_lens: list[int], pad: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    s, t = max(s_lens) + pad, max(t_lens) + pad
    return {
        "waveform": torch.randn(len(s_lens), s, generator=g),
        "waveform_mask": torch.arange(s)[None, :] < torch.tensor(s_lens)[:, None],
        "text": torch.randn(len(t_lens), t, 384, generator=g),
        "text_mask": torch.arange(t)[None, :] < torch.tensor(t_lens)[:, None],
    }


@pytest.mark.parametrize(
    "config, seconds",
    [({}, 512 / 16000), ({"conv_strides": (2, 1, 1)}, 1024 / 16000), ({"pool_sizes": (4, 4, 5)}, 80 / 16000)],
)
def test_frame_seconds_matches_actual_downsampling(config: dict, seconds: float) -> None:
    model = create_model("cma_raw", **config).eval()
    assert model.frame_seconds == pytest.approx(seconds)
    out = model(**_waveform_inputs([16000, 9000], [4, 2]))
    w = out.attentions["cross_audio_text"]
    assert out.attention_info["cross_audio_text"].frame_seconds == {"frame": pytest.approx(seconds)}
    # A 1 s input gives as many encoded frames as whole frame periods fit in 1 s (floors).
    assert w.shape[2] == int(1.0 / seconds)
    # The 9000-sample row: frames past its encoded length get no weight, the rest sum to one.
    n = int(9000 / 16000 / seconds)
    assert model.encoded_lengths(torch.tensor([9000])).item() == n
    t2a = out.attentions["cross_text_audio"]
    assert t2a[1, :, :2, n:].abs().sum() == 0
    torch.testing.assert_close(t2a[1, :, :2].sum(-1), torch.ones(10, 2))


def test_spectrogram_front_end() -> None:
    model = create_model("cma_spec").eval()
    assert model.inputs == ("audio", "text")
    assert model.frame_seconds == pytest.approx(0.04)
    g = torch.Generator().manual_seed(1)
    out = model(audio=torch.randn(2, 100, 257, generator=g), text=torch.randn(2, 3, 384, generator=g))
    assert out.attentions["cross_audio_text"].shape == (2, 10, 25, 3)
    assert set(out.attentions) == {
        f"{m}{s}" for m in ("cross_audio_text", "cross_text_audio") for s in ("", "_layer1", "_layer2")
    }
    assert out.embeddings.shape == (2, 400)


def test_training_mode_output_ignores_padding() -> None:
    # With dropout off, even train-mode BatchNorm must not see how much padding there is.
    model = create_model("cma_raw", dropout=0.0, lstm_dropout=0.0).train()
    x = _waveform_inputs([6000, 4100], [5, 2])
    y = _waveform_inputs([6000, 4100], [5, 2], pad=700)
    y["waveform"][:, :6000] = torch.where(x["waveform_mask"], x["waveform"], y["waveform"][:, :6000])
    y["text"][:, :5] = torch.where(x["text_mask"][..., None], x["text"], y["text"][:, :5])
    y["waveform"][~y["waveform_mask"]] = 50.0  # loud garbage in the padding
    torch.testing.assert_close(model(**x).logits, model(**y).logits, rtol=1e-4, atol=1e-5)


def test_bad_input() -> None:
    model = create_model("cma_raw")
    x = _waveform_inputs([6000, 4100], [5, 2])
    with pytest.raises(ValueError, match="model 'cma_raw': missing input 'waveform'"):
        model(text=x["text"], text_mask=x["text_mask"])
    with pytest.raises(ValueError, match="'waveform' too short"):
        model(waveform=torch.randn(1, 300), text=x["text"][:1])
    with pytest.raises(ValueError, match="model 'cma_spec': input 'audio' has feature size 120"):
        create_model("cma_spec")(audio=torch.randn(1, 50, 120), text=x["text"][:1])
    x["waveform_mask"][0] = False
    with pytest.raises(ValueError, match="'waveform' is all padding"):
        model(**x)
