"""The unimodal baselines run the paper rows they are compared with: Xu et al.'s speech-only and
text-only models under Xu's features and recipe by default, Yoon et al. 2020's RNN-attn under
Yoon's set-up (variant ``yoon2020``, and ``unimodal_video``).

Before, both trained with Pepino et al.'s recipe (lr 7e-4, warm-up, class weights, session +
script folds) on MFCC-120, and no video baseline existed: every assertion on the recipe below
failed then."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from workbench.models import create_model, get_card
from workbench.testing.model_inputs import batch_for_model
from workbench.training.build import build_config
from workbench.training.recipes import get_recipe


def _recipe(p) -> tuple:
    return (p.optimizer, p.lr, p.protocol, p.label_scheme, p.warmup_steps, bool(p.class_weights), p.grad_clip)


@pytest.mark.parametrize("name", ["unimodal_audio", "unimodal_text"])
def test_default_is_xus_recipe(name: str) -> None:
    p = get_recipe(name, "paper")
    assert _recipe(p) == ("adam", 1e-3, "loso_session", "iemocap4", 0, False, None)
    assert p.early_stopping_patience is None and p.variant == ""
    assert p.source.startswith("Xu et al. 2019, sec. 4.1-4.2")
    # the same recipe as Xu's multimodal models, which these rows are compared with
    assert _recipe(get_recipe("xu_alignment", "paper")) == _recipe(p)


def test_speech_only_reads_xus_34_d_frames_with_mirsamadis_structure() -> None:
    p = get_recipe("unimodal_audio", "paper")
    assert {k: f.extractor for k, f in p.features.items()} == {"audio": "frame34"}
    feats = {"audio": type("F", (), {"dim": 34, "frame_seconds": 0.01})()}
    model = create_model("unimodal_audio", **build_config("unimodal_audio", p, None, feats, n_classes=4))
    c = model.config
    assert (c.audio_dim, c.dense_layers, c.dense_dim, c.hidden, c.bidirectional, c.input_dropout) == (34, 2, 512, 128, False, 0.0)


def test_text_only_is_xus_text_encoder_with_attention() -> None:
    c = create_model("unimodal_text").config
    assert (c.dense_layers, c.hidden, c.bidirectional, c.input_dropout) == (0, 100, True, 0.0)  # Xu sec. 4.2-4.3


@pytest.mark.parametrize("name, hidden, dropout", [("unimodal_audio", 200, 0.3), ("unimodal_text", 200, 0.7)])
def test_yoon2020_variant_is_yoons_set_up(name: str, hidden: int, dropout: float) -> None:
    p = get_recipe(name, "paper", variant="yoon2020")
    assert (p.protocol, p.label_scheme, p.lr, p.grad_clip, p.batch_size) == ("tenfold_811", "iemocap7", 1e-3, 1.0, 128)
    assert p.early_stopping_patience is not None and p.variant == "yoon2020"
    assert p.source.startswith("Yoon et al. 2020, sec. 4.1-4.2")
    c = create_model(name, **p.model_config).config
    assert (c.bidirectional, c.dense_layers, c.hidden, c.input_dropout) == (True, 0, hidden, dropout)
    if name == "unimodal_audio":
        assert p.features["audio"].extractor == "mfcc120"  # AMH's 120-d MFCC (Yoon sec. 4.2)
    # the CPU recipes keep the variant's structure and the 7 classes, at the CPU sizes
    for recipe, size in (("demo", 48), ("smoke", 24)):
        q = get_recipe(name, recipe, variant="yoon2020")
        c = create_model(name, **q.model_config).config
        assert q.label_scheme == "iemocap7" and (c.bidirectional, c.dense_layers, c.hidden) == (True, 0, size)


def test_setup_fills_only_what_is_not_given() -> None:
    c = create_model("unimodal_audio", setup="yoon2020", hidden=7, dense_layers=1).config
    assert (c.hidden, c.dense_layers, c.bidirectional, c.input_dropout) == (7, 1, True, 0.3)
    with pytest.raises(ValueError, match="unimodal_video.*setup.*yoon2020"):
        create_model("unimodal_video", setup="xu2019")


def test_video_baseline_is_yoons_rnn_attn_over_visual_frames() -> None:
    card = get_card("unimodal_video")
    assert card.model_inputs() == ("video",) and card.default_variant == ""
    p = get_recipe("unimodal_video", "paper")
    assert (p.protocol, p.label_scheme, p.grad_clip) == ("tenfold_811", "iemocap7", 1.0)
    assert p.features["video"].extractor == "visual"
    model = create_model("unimodal_video", video_dim=5).eval()
    c = model.config
    assert (c.bidirectional, c.hidden, c.dense_layers, c.input_dropout) == (True, 128, 0, 0.3)
    video = torch.randn(2, 6, 5)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    out = model(video=video, video_mask=mask)
    w = out.attentions["video_pool"]
    assert w.shape == (2, 6) and w[1, 4:].abs().sum() == 0
    torch.testing.assert_close(w.sum(1), torch.ones(2))
    info = out.attention_info["video_pool"]
    assert info.axes == ("batch", "frame") and info.frame_seconds["frame"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="unimodal_video.*video"):
        model(audio=torch.randn(2, 6, 34))


def test_video_baseline_overfits_a_tiny_batch() -> None:
    torch.manual_seed(0)
    model = create_model("unimodal_video", hidden=16, input_dropout=0.0).train()
    labels = torch.arange(12) % 4
    batch = batch_for_model(model, batch=12, seed=5, labels=labels, class_signal=1.0, lengths={"video": (3, 8)})
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        opt.zero_grad()
        loss = F.cross_entropy(model(**batch).logits, labels)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    with torch.no_grad():
        final = F.cross_entropy(model.eval()(**batch).logits, labels).item()
    assert final < 0.2 and final < first / 5, f"{first:.3f} -> {final:.3f}"


def test_modality_is_fixed_by_the_name() -> None:
    with pytest.raises(ValueError, match="unimodal_video.*modality"):
        create_model("unimodal_video", modality="audio")
    assert get_card("unimodal_text").variants.keys() == {"yoon2020"} == get_card("unimodal_audio").variants.keys()
