"""Pepino et al. 2020: the variants the paper's table and figures need, read from the cards.

Scalar-weight late fusion (sec. 2.3.2), the small and large models of Fig. 2 (sec. 4.1),
which inputs each variant reads, and the LF-PT recipe (sec. 3) down to the pre-trained
branches.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from workbench.models import create_model
from workbench.models.pepino_fusion import ScalarWeights, configure_strategy
from workbench.models.registry import get_card
from workbench.training.build import build_model, model_inputs_of
from workbench.training.recipes import get_recipe
from workbench.training.spec import RunSpec

SMALL = {"text_dense": 8, "text_filters": 8, "audio_filters": 8, "audio_dim": 6, "text_dim": 10}
SHAPES = {"audio": SimpleNamespace(dim=36, frame_seconds=0.01), "text": SimpleNamespace(dim=384, frame_seconds=None)}


def test_variant_names_and_defaults_are_the_contract() -> None:
    """The names the paper comparison matches table rows against."""
    names = {m: set(get_card(m).variants) for m in ("pepino_audio", "pepino_text", "pepino_early", "pepino_late")}
    assert names == {
        "pepino_audio": {"small", "large"},
        "pepino_text": {"small", "large", "static_text"},
        "pepino_early": {"pretrained", "cold_start", "warm_start", "static_text"},
        "pepino_late": {"pretrained", "cold_start", "warm_start", "static_text", "scalar_weights"},
    }
    # Table 1's Audio / BERT rows use the Figure 1 size: the default configuration, neither small nor large
    assert get_card("pepino_audio").default_variant == get_card("pepino_text").default_variant == ""
    assert get_card("pepino_early").default_variant == get_card("pepino_late").default_variant == "pretrained"
    assert get_recipe("pepino_late", "paper").variant == "pretrained"


def test_small_and_large_halve_and_double_every_hidden_layer() -> None:
    """Sec. 4.1: "one using half of the nodes in the models from Figure 1 (small), and one using
    twice the number of nodes (large)"; the output keeps one unit per class."""
    sizes = {}
    for variant in ("small", "", "large"):
        audio, _ = build_model("pepino_audio", get_recipe("pepino_audio", "paper", variant=variant or None), {}, SHAPES, 4)
        text, _ = build_model("pepino_text", get_recipe("pepino_text", "paper", variant=variant or None), {}, SHAPES, 4)
        sizes[variant] = (audio.audio_branch.conv1.conv.out_channels, audio.audio_branch.conv2.conv.out_channels,
                          text.text_branch.dense.out_features, text.text_branch.conv2.conv.out_channels,
                          audio.audio_branch.out.out_features, text.text_branch.out.out_features)
    assert sizes[""] == (104, 104, 128, 128, 4, 4)
    assert sizes["small"] == (52, 52, 64, 64, 4, 4)
    assert sizes["large"] == (208, 208, 256, 256, 4, 4)
    # relative to each recipe's own sizes: the CPU demo's small model is half the demo model
    demo_small, _ = build_model("pepino_audio", get_recipe("pepino_audio", "demo", variant="small"), {}, SHAPES, 4)
    assert demo_small.audio_branch.conv1.conv.out_channels == get_card("pepino_audio").demo["audio_filters"] // 2
    with pytest.raises(ValueError, match="width must be positive"):
        create_model("pepino_audio", width=0.0)


def test_variants_read_the_right_inputs() -> None:
    def reads(model: str, variant: str | None = None) -> dict[str, str]:
        p = get_recipe(model, "paper", variant=variant)
        return {k: p.features[k].extractor for k in model_inputs_of(model, p)}

    assert reads("pepino_audio") == reads("pepino_audio", "small") == reads("pepino_audio", "large") == {
        "audio": "prosody36"}
    assert reads("pepino_text") == reads("pepino_text", "large") == {"text": "text_contextual"}
    assert reads("pepino_text", "static_text") == {"text": "text_static"}  # Table 1 GloVe row
    both = {"audio": "prosody36", "text": "text_contextual"}
    for variant in ("pretrained", "cold_start", "warm_start", "scalar_weights"):
        assert reads("pepino_late", variant) == both
    assert reads("pepino_early", "static_text") == {"audio": "prosody36", "text": "text_static"}
    # prosody36's 18 LLDs get their deltas after normalisation: the model reads 36 columns
    assert get_recipe("pepino_late", "paper").features["audio"].deltas


def _train_scalar_fusion(follow: str) -> tuple[float, float]:
    """The fusion layer alone, trained at LF-PT's rate (0.01) on two systems' logits, the
    labels being the ``follow`` system's argmax and the other system independent noise;
    returns (w_text, w_audio)."""
    torch.manual_seed(0)
    fusion = ScalarWeights(4)
    z = {"text": 2 * torch.randn(256, 4), "audio": 2 * torch.randn(256, 4)}
    labels = z[follow].argmax(-1)
    logits = torch.cat([z["text"], z["audio"]], dim=-1)
    opt = torch.optim.Adam(fusion.parameters(), lr=0.01)
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(fusion(logits), labels).backward()
        opt.step()
    w_text, w_audio = fusion.weight.detach().tolist()
    return w_text, w_audio


def test_scalar_weight_late_fusion_learns_one_weight_per_system() -> None:
    """Sec. 2.3.2's alternative: logits = w_text * z_text + w_audio * z_audio, two parameters,
    all that trains over pre-trained (frozen) branches; the system the labels follow gets the
    larger weight, whichever it is."""
    torch.manual_seed(0)
    text, audio = create_model("pepino_text", **SMALL), create_model("pepino_audio", **SMALL)
    model = create_model("pepino_late", late_fusion="scalar", **SMALL)
    assert isinstance(model.fusion_net, ScalarWeights)
    summary = configure_strategy(model, "pretrained", text_ckpt=text, audio_ckpt=audio)
    assert summary["trainable"] == ["fusion_net.weight"]
    with torch.no_grad():
        model.fusion_net.weight.copy_(torch.tensor([0.7, -0.2]))
        out = model.eval()(text=torch.randn(3, 5, 10), audio=torch.randn(3, 30, 6))
    z_text, z_audio = out.embeddings[:, :4], out.embeddings[:, 4:]  # the branches' own logits
    torch.testing.assert_close(out.logits, 0.7 * z_text - 0.2 * z_audio)
    configure_strategy(model, "pretrained", text_ckpt=text, audio_ckpt=audio)  # back to the start value
    torch.testing.assert_close(model.fusion_net.weight.detach(), torch.tensor([0.5, 0.5]))

    w_text, w_audio = _train_scalar_fusion("text")
    assert w_text > 0.5 and w_text - w_audio > 0.5, (w_text, w_audio)
    w_text, w_audio = _train_scalar_fusion("audio")
    assert w_audio > 0.5 and w_audio - w_text > 0.5, (w_text, w_audio)


def test_scalar_weights_variant_trains_as_lf_pt() -> None:
    p = get_recipe("pepino_late", "paper", variant="scalar_weights")
    assert p.model_config == {"late_fusion": "scalar"}
    assert (p.fusion_strategy, p.lr, p.warmup_steps, p.class_weights) == ("pretrained", 0.01, 0, "batch_size")
    model, _ = build_model("pepino_late", p, {}, SHAPES, 4)
    assert sum(t.numel() for t in model.fusion_net.parameters()) == 2


def test_lf_pt_branches_pre_train_with_their_own_learning_rate_and_warm_up(monkeypatch, tmp_path) -> None:
    """LF-PT's fusion layer runs at 0.01 without warm-up (sec. 3); the audio and text models it
    is built from are trained as the single-branch models are: 7e-4, 40 warm-up steps."""
    from workbench.training import strategies

    seen: dict[str, object] = {}
    monkeypatch.setattr(strategies, "train_model", lambda model, train, settings, *a, **k: seen.setdefault(
        settings.model, settings))
    spec = RunSpec.create("pepino_late", "paper")
    model, _ = build_model("pepino_late", spec.settings, {}, SHAPES, 4)
    loaded = {}
    monkeypatch.setattr(model, "load_branches", lambda strategy, **trained: loaded.update(trained, strategy=strategy))
    data = SimpleNamespace(train=SimpleNamespace(classes=("neu", "hap", "ang", "sad")), validation=[])
    strategies.pretrain_branches(model, spec, data, SHAPES, run_dir=tmp_path, seed=0, progress=False)  # type: ignore[arg-type]
    assert (spec.settings.lr, spec.settings.warmup_steps) == (0.01, 0)
    for branch in ("pepino_text", "pepino_audio"):
        s = seen[branch]
        assert (s.lr, s.warmup_steps, s.fusion_strategy, s.class_weights) == (7e-4, 40, None, "batch_size")  # type: ignore[attr-defined]
    assert loaded["strategy"] == "pretrained" and set(loaded) == {"text", "audio", "strategy"}
