"""MCSAN specifics: the ablation switches of Table 3 change which maps exist and the
classifier width; the frame axis reflects both pools; conv/pool masking."""

from __future__ import annotations

import pytest
import torch

from workbench.models import create_model


def _inputs(a_lens: list[int], t_lens: list[int], pad: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ta, tt = max(a_lens) + pad, max(t_lens) + pad
    a_mask = torch.arange(ta)[None, :] < torch.tensor(a_lens)[:, None]
    t_mask = torch.arange(tt)[None, :] < torch.tensor(t_lens)[:, None]
    audio = torch.randn(len(a_lens), ta, 120, generator=g)
    text = torch.randn(len(t_lens), tt, 384, generator=g)
    return {"audio": audio, "audio_mask": a_mask, "text": text, "text_mask": t_mask}


CROSS = {"cross_audio_text", "cross_text_audio"}
SELF = {"self_audio", "self_text"}


@pytest.mark.parametrize(
    "config, maps, width",
    [
        ({}, CROSS | SELF, 4 * 128),
        ({"use_self": False}, CROSS, 2 * 128),
        ({"use_cross": False}, SELF, 2 * 128),
        ({"arrangement": "cross_self"}, CROSS | SELF, 2 * 128),
        ({"arrangement": "self_cross"}, CROSS | SELF, 2 * 128),
        ({"n_layers": 2}, CROSS | SELF | {f"{m}_layer{i}" for m in CROSS | SELF for i in (1, 2)}, 4 * 128),
    ],
)
def test_ablation_switches(config: dict, maps: set[str], width: int) -> None:
    model = create_model("mcsan", **config).eval()
    out = model(**_inputs([40, 23], [6, 3]))
    assert set(out.attentions) == maps
    assert out.embeddings.shape == (2, width)
    assert model.classifier.in_features == width
    if "n_layers" in config:  # the unsuffixed map is the last layer's
        assert torch.equal(out.attentions["self_audio"], out.attentions["self_audio_layer2"])


def test_frame_axis_is_downsampled_four_times() -> None:
    model = create_model("mcsan").eval()
    out = model(**_inputs([100, 37], [6, 3]))
    # 100 frames at 10 ms -> two pools (kernel 3, stride 2, padding 1) -> 50 -> 25 frames.
    w = out.attentions["cross_text_audio"]
    assert w.shape == (2, 8, 6, 25)
    assert out.attention_info["cross_text_audio"].frame_seconds == {"frame": pytest.approx(0.04)}
    assert out.attention_info["cross_text_audio"].axes == ("batch", "head", "word", "frame")
    # Row 1 has 37 frames -> ceil(37/2) = 19 -> 10 pooled frames: later frames get nothing.
    assert w[1, :, :3, 10:].abs().sum() == 0
    torch.testing.assert_close(w[1, :, :3, :10].sum(-1), torch.ones(8, 3))
    assert w[1, :, 3:].abs().sum() == 0  # padded words query nothing


def test_encoder_frames_do_not_see_padding_values() -> None:
    # Garbage in padded steps must not reach any real encoded frame (conv zeroing, -inf pool).
    model = create_model("mcsan").eval()
    x = _inputs([41, 30], [5, 4], pad=9)
    y = {k: v.clone() for k, v in x.items()}
    y["audio"][~y["audio_mask"]] = 1e4
    y["text"][~y["text_mask"]] = -1e4
    torch.testing.assert_close(model(**x).logits, model(**y).logits)


def test_bad_config_and_input() -> None:
    with pytest.raises(ValueError, match="use_cross and use_self"):
        create_model("mcsan", use_cross=False, use_self=False)
    with pytest.raises(ValueError, match="needs both modules"):
        create_model("mcsan", use_self=False, arrangement="cross_self")
    with pytest.raises(ValueError, match="unknown config field"):
        create_model("mcsan", n_head=4)
    model = create_model("mcsan")
    x = _inputs([40, 23], [6, 3])
    del x["text"]
    with pytest.raises(ValueError, match="model 'mcsan': missing input 'text'"):
        model(**x)
    x = _inputs([40, 23], [6, 3])
    x["audio"] = x["audio"][..., :40]
    with pytest.raises(ValueError, match="'audio' has feature size 40"):
        model(**x)
