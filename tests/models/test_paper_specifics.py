"""What the registry-driven tests cannot see: Xu's hard alignment and Pepino's strategies."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from workbench.models import create_model
from workbench.models.layers import run_rnn
from workbench.models.pepino_fusion import configure_strategy, paper_learning_rate
from workbench.testing.model_inputs import batch_for_model

SMALL_PEPINO = {"text_dense": 8, "text_filters": 8, "audio_filters": 8, "fusion_hidden": 8, "audio_dim": 6, "text_dim": 10}


def test_xu_hard_alignment_is_mean_of_speech_states_in_span() -> None:
    torch.manual_seed(0)
    m = create_model("xu_alignment_hard", hidden=4, audio_dim=5, text_dim=6).eval()
    batch = batch_for_model(m, batch=2, seed=0, lengths={"audio": (12, 20), "text": (2, 4)})
    batch["word_spans"][0, 0] = torch.tensor([3, 7])  # an explicit span
    out = m(**batch)
    w = out.attentions["word_frame"]
    assert w.shape == (2, 1, batch["text"].shape[1], batch["audio"].shape[1])
    expected = torch.zeros(batch["audio"].shape[1])
    expected[3:7] = 0.25
    torch.testing.assert_close(w[0, 0, 0], expected)
    s = run_rnn(m.speech_encoder, batch["audio"].masked_fill(~batch["audio_mask"][..., None], 0), batch["audio_mask"])
    torch.testing.assert_close((w[0, 0, 0] @ s[0]), s[0, 3:7].mean(0))


@pytest.mark.parametrize("name", ["xu_alignment", "xu_alignment_hard", "xu_alignment_concat"])
def test_xu_defaults_and_recipe_are_the_papers(name: str) -> None:
    """Xu et al. 2019, line by line: 34-d frames (sec. 4.2), 100 units per LSTM direction, 5
    heads of 40 weights (sec. 4.2), no dropout reported; four classes, four sessions train and
    one tests (sec. 4.1); Adam at 0.001 (sec. 4.2); nothing the paper does not state (no
    warm-up, clipping, class weights, early stopping)."""
    from workbench.training.recipes import get_recipe

    c = create_model(name).config
    assert (c.audio_dim, c.hidden, c.heads, c.attn_dim, c.dropout, c.frame_seconds) == (34, 100, 5, 40, 0.0, 0.01)
    p = get_recipe(name, "paper")
    assert (p.optimizer, p.lr, p.protocol, p.label_scheme) == ("adam", 1e-3, "loso_session", "iemocap4")
    assert (p.warmup_steps, p.grad_clip, p.class_weights, p.early_stopping_patience) == (0, None, False, None)
    assert p.features["audio"].extractor == "frame34" and p.source == "Xu et al. 2019, sec. 4.1-4.2"


def test_xu_hard_alignment_rejects_bad_spans() -> None:
    m = create_model("xu_alignment_hard", hidden=4, audio_dim=5, text_dim=6)
    batch = batch_for_model(m, batch=2, seed=0)
    batch["word_spans"][1, 0, 1] = batch["audio_mask"][1].sum() + 1
    with pytest.raises(ValueError, match="xu_alignment_hard.*word_spans"):
        m(**batch)
    del batch["word_spans"]
    with pytest.raises(ValueError, match="xu_alignment_hard.*word_spans"):
        m(**batch)


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_pepino_pretrained_and_warm_start_freeze_the_right_layers(fusion: str) -> None:
    torch.manual_seed(0)
    text, audio = create_model("pepino_text", **SMALL_PEPINO), create_model("pepino_audio", **SMALL_PEPINO)
    model = create_model(f"pepino_{fusion}", **SMALL_PEPINO)
    with pytest.raises(ValueError, match="needs text_ckpt"):
        configure_strategy(model, "pretrained")

    summary = configure_strategy(model, "pretrained", text_ckpt=text, audio_ckpt=audio)
    assert all(n.startswith("fusion_net.") for n in summary["trainable"])
    torch.testing.assert_close(model.text_branch.conv1.conv.weight, text.text_branch.conv1.conv.weight)
    torch.testing.assert_close(model.audio_branch.conv2.conv.weight, audio.audio_branch.conv2.conv.weight)

    summary = configure_strategy(model, "warm_start", text_ckpt=text.state_dict(), audio_ckpt=audio)
    trained_branch = {n.split(".")[0] + "." + n.split(".")[1] for n in summary["trainable"] if "branch" in n}
    assert trained_branch == {"text_branch.conv2", "audio_branch.conv2"}  # L_T3 and L_A2

    # one training step: frozen weights and frozen batch-norm statistics do not move
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=paper_learning_rate(fusion, "warm_start"))
    batch = batch_for_model(model, batch=4, seed=0)
    model.train()
    F.cross_entropy(model(**batch).logits, torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    after = model.state_dict()
    for k in before:
        moved = not torch.equal(before[k], after[k])
        frozen = k.startswith(("text_branch.dense", "text_branch.conv1", "audio_branch.conv1")) or ".out." in f".{k}"
        if frozen and "branch" in k:
            assert not moved, k
    assert not torch.equal(before["text_branch.conv2.conv.weight"], after["text_branch.conv2.conv.weight"])
    assert not torch.equal(before["text_branch.conv2.bn.running_mean"], after["text_branch.conv2.bn.running_mean"])

    summary = configure_strategy(model, "cold_start")
    assert not summary["frozen"] and model.frozen == []


def test_pepino_strategy_rejects_mismatched_checkpoint() -> None:
    model = create_model("pepino_early", **SMALL_PEPINO)
    other = create_model("pepino_text", **{**SMALL_PEPINO, "text_filters": 12})
    with pytest.raises(ValueError, match="text_branch"):
        configure_strategy(model, "pretrained", text_ckpt=other, audio_ckpt=create_model("pepino_audio", **SMALL_PEPINO))
    with pytest.raises(ValueError, match="pepino_text"):
        configure_strategy(create_model("pepino_text"), "cold_start")
