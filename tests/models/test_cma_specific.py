"""CMA (Krishna 2020) specifics: frame_seconds matches the real downsampling, masks follow
the conv/pool stack, BatchNorm statistics ignore padding in training, input errors; eq. 5's
scores divided by d_q, the 50-word text cap, and Table 2's self-attention unimodal models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workbench.models import create_model, get_card
from workbench.models.cma_raw import CMAConfig
from workbench.models.layers import MultiHeadAttention
from workbench.testing.model_inputs import batch_for_model
from workbench.training.recipes import get_recipe


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


# --------------------------------------------------------------------------- eq. 5: scores / d_q
def _eq5_reference(mha: torch.nn.Module, query: np.ndarray, key: np.ndarray, key_mask: np.ndarray) -> tuple:
    """Eq. 5 and 6 written out in float64 numpy from the layer's weights, head by head:
    A_i = softmax(Q_i K_i^T / d_q) V_i, A = Concat(A_1 .. A_M) W_0, d_q the query size of a head."""
    w = {n: p.detach().double().numpy() for n, p in mha.named_parameters()}
    q = query @ w["q_proj.weight"].T + w["q_proj.bias"]
    k = key @ w["k_proj.weight"].T + w["k_proj.bias"]
    v = key @ w["v_proj.weight"].T + w["v_proj.bias"]
    heads, d_q = mha.heads, q.shape[-1] // mha.heads
    outs, weights = [], []
    for i in range(heads):
        sl = slice(i * d_q, (i + 1) * d_q)
        scores = q[:, sl] @ k[:, sl].T / d_q
        scores = np.where(key_mask[None, :], scores, -np.inf)
        a = np.exp(scores - scores.max(axis=1, keepdims=True))
        a /= a.sum(axis=1, keepdims=True)
        weights.append(a)
        outs.append(a @ v[:, sl])
    out = np.concatenate(outs, axis=1) @ w["out_proj.weight"].T + w["out_proj.bias"]
    return out, np.stack(weights)


def test_attention_divides_scores_by_d_q_as_eq_5_says() -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(dim=6, heads=2, scale="d").eval()
    g = torch.Generator().manual_seed(3)
    query, key = 2.0 * torch.randn(1, 4, 6, generator=g), 2.0 * torch.randn(1, 5, 6, generator=g)
    key_mask = torch.tensor([[True, True, True, True, False]])
    with torch.no_grad():
        out, weights = mha(query, key, key_mask=key_mask)
    ref_out, ref_w = _eq5_reference(mha, query[0].double().numpy(), key[0].double().numpy(), key_mask[0].numpy())
    np.testing.assert_allclose(weights[0].numpy(), ref_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[0].detach().numpy(), ref_out, rtol=1e-5, atol=1e-5)
    # the usual 1/sqrt(d_q) gives other weights: the test tells the two apart
    sqrt_w = MultiHeadAttention(dim=6, heads=2)
    sqrt_w.load_state_dict(mha.state_dict())
    assert not np.allclose(sqrt_w(query, key, key_mask=key_mask)[1][0].detach().numpy(), ref_w, atol=1e-3)
    assert MultiHeadAttention(dim=6, heads=2).scale == "sqrt_d"  # other models keep sqrt(d)


def test_cma_layers_use_eq_5_scaling_with_d_q_the_head_size() -> None:
    model = create_model("cma_raw").eval()
    for layer in [*model.cma1, *model.cma2]:
        assert (layer.attn.scale, layer.attn.head_dim, layer.attn.score_divisor) == ("d", 10, 10.0)
    # a CMA-1 layer's weights are eq. 5 on its layer-normalised query and key inputs
    layer = create_model("cma_raw", dim=8, heads=2, ff_dim=8).cma1[0].eval()
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(1, 3, 8, generator=g), torch.randn(1, 6, 8, generator=g)
    y_mask = torch.tensor([[True] * 4 + [False] * 2])
    _, weights = layer(x, torch.ones(1, 3, dtype=torch.bool), y, y_mask)
    _, ref_w = _eq5_reference(layer.attn, layer.norm_q(x)[0].detach().double().numpy(),
                              layer.norm_kv(y)[0].detach().double().numpy(), y_mask[0].numpy())
    np.testing.assert_allclose(weights[0].detach().numpy(), ref_w, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="scale must be"):
        MultiHeadAttention(dim=8, heads=2, scale="sqrt")


# --------------------------------------------------------------------------- 50-word cap
def test_text_encoder_reads_the_first_50_words_only() -> None:
    assert CMAConfig().max_words == 50  # sec. 2.2 "We set N to be 50"; sec. 4
    model = create_model("cma_raw", dropout=0.0, lstm_dropout=0.0).eval()
    x = _waveform_inputs([16000, 12000], [60, 40])
    changed = dict(x, text=x["text"].clone())
    changed["text"][0, 50:] = 100.0  # words 51-60 of the long row: not read
    first_50 = dict(x, text=x["text"][:, :50], text_mask=x["text_mask"][:, :50])
    with torch.no_grad():
        out, out_changed, out_50 = model(**x), model(**changed), model(**first_50)
        out_hosted = model(**x, text_lengths=torch.tensor([60, 40]), waveform_lengths=torch.tensor([16000, 12000]))
    for other in (out_changed, out_50, out_hosted):
        torch.testing.assert_close(other.logits, out.logits, rtol=1e-5, atol=1e-6)
    # every word keeps its row/column in the maps; words past 50 get no weight and no row
    a2t, t2a = out.attentions["cross_audio_text"], out.attentions["cross_text_audio"]
    assert a2t.shape[-1] == 60 and t2a.shape[2] == 60
    assert a2t[..., 50:].abs().sum() == 0 and t2a[:, :, 50:].abs().sum() == 0
    torch.testing.assert_close(a2t[0, :, :20].sum(-1), torch.ones(10, 20))
    torch.testing.assert_close(out.attentions["cross_text_audio"][:, :, :50], out_50.attentions["cross_text_audio"])
    # max_words=None reads every word: the changed words then change the output
    every = create_model("cma_raw", dropout=0.0, lstm_dropout=0.0, max_words=None).eval()
    every.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not torch.allclose(every(**x).logits, every(**changed).logits, atol=1e-4)
    with pytest.raises(ValueError, match="max_words"):
        create_model("cma_raw", max_words=0)


# --------------------------------------------------------------------------- Table 2 self-attention
_TINY = dict(conv_channels=(8, 8, 8), conv_strides=(2, 1, 1), pool_sizes=(4, 4, 4), lstm_hidden=8, lstm_dropout=0.0,
             text_channels=8, dim=16, heads=2, ff_dim=16, dropout=0.0)


@pytest.mark.parametrize("variant, reads, key, axes", [
    ("self_attn_audio", ("waveform",), "self_audio", ("batch", "head", "frame", "frame")),
    ("self_attn_text", ("text",), "self_text", ("batch", "head", "word", "word")),
])
def test_self_attention_variants_read_one_modality_and_expose_their_maps(variant, reads, key, axes) -> None:
    card = get_card("cma_raw")
    config = dict(card.variant(variant).config)
    assert card.model_inputs(config) == reads
    for recipe in ("paper", "demo"):  # what training loads: only the features of that modality
        p = get_recipe("cma_raw", recipe, variant=variant)
        assert card.model_inputs(p.model_config) == reads and p.variant == variant
    assert variant not in get_card("cma_spec").variants  # Table 2 used the raw-waveform encoder (sec. 5)

    torch.manual_seed(0)
    model = create_model("cma_raw", **_TINY, **config).eval()
    assert model.inputs == reads
    other = "text" if reads == ("waveform",) else "waveform"
    assert not any(n.startswith(other) or n.startswith("cma") for n, _ in model.named_parameters())
    batch = batch_for_model(model, batch=3, seed=0)
    assert set(batch) == {reads[0], f"{reads[0]}_mask"}
    with torch.no_grad():
        out = model(**batch)
        # the other modality, if passed, is not read
        extra = _waveform_inputs([16000, 9000, 5000], [4, 2, 3])
        with_other = model(**batch, **{k: v for k, v in extra.items() if k.startswith(other)})
    torch.testing.assert_close(with_other.logits, out.logits, rtol=0, atol=0)
    assert out.embeddings.shape == (3, 2 * 16)
    assert set(out.attentions) == {key, f"{key}_layer1", f"{key}_layer2"} == set(out.attention_info)
    mask = batch[f"{reads[0]}_mask"]
    for name, w in out.attentions.items():
        info = out.attention_info[name]
        assert info.axes == axes and w.shape[:2] == (3, 2) and w.shape[2] == w.shape[3]
        if reads == ("waveform",):
            assert info.frame_seconds == {"frame": pytest.approx(model.frame_seconds)}
            n = model.encoded_lengths(mask.long().sum(1))
        else:
            assert info.frame_seconds == {}
            n = mask.long().sum(1)
        for b in range(3):  # rows of real steps sum to one over real steps; padding gets nothing
            k = int(n[b])
            torch.testing.assert_close(w[b, :, :k, :k].sum(-1), torch.ones(2, k))
            assert w[b, :, k:].abs().sum() == 0 and w[b, :, :, k:].abs().sum() == 0


@pytest.mark.parametrize("variant", ["self_attn_audio", "self_attn_text"])
def test_self_attention_variants_overfit_a_tiny_batch(variant: str) -> None:
    torch.manual_seed(0)
    model = create_model("cma_raw", **_TINY, **get_card("cma_raw").variant(variant).config).train()
    labels = torch.arange(16) % 4
    batch = batch_for_model(model, batch=16, seed=5, labels=labels, class_signal=1.0,
                            lengths={"text": (3, 6), "waveform": (2000, 4000)})
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        F.cross_entropy(model(**batch).logits, labels).backward()
        opt.step()
    with torch.no_grad():
        assert F.cross_entropy(model.eval()(**batch).logits, labels).item() < 0.2


def test_unknown_attention_is_refused() -> None:
    with pytest.raises(ValueError, match="model 'cma_raw': unknown attention 'self_video'"):
        create_model("cma_raw", attention="self_video")
