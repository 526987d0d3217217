"""AMH specifics the registry-driven test does not cover: hop order and count, the hop
equations against a hand computation, input errors, the reference code's per-modality input
dropout, the paper's set-up (7 classes, 10 folds of 8:1:1, early stopping on the development
part), the default variant, and the MHA pairs of Table 1."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence

from workbench.corpus.labels import get_scheme
from workbench.models import create_model, get_card
from workbench.protocols import make_folds
from workbench.testing import make_manifest
from workbench.training.build import model_inputs_of
from workbench.training.recipes import get_recipe
from workbench.training.spec import RunSpec


def _inputs(lengths: dict[str, list[int]], dims: dict[str, int], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, lens in lengths.items():
        t = max(lens)
        out[name] = torch.randn(len(lens), t, dims[name], generator=g)
        out[f"{name}_mask"] = torch.arange(t)[None, :] < torch.tensor(lens)[:, None]
    return out


DIMS = {"audio": 120, "text": 384, "video": 32}


def test_hop_order_and_count_follow_the_paper() -> None:
    model = create_model("amh", n_hops=8).eval()
    out = model(**_inputs({"audio": [20, 11], "text": [5, 3], "video": [4, 2]}, DIMS))
    # Table 2: V, A, T, V, A, T, ... with one map per hop over that modality's positions.
    expected = ["video", "audio", "text"] * 3
    assert list(out.attentions) == [f"hop{k}_{m}" for k, m in enumerate(expected[:8], start=1)]
    assert out.attentions["hop2_audio"].shape == (2, 20)
    assert out.attention_info["hop2_audio"].frame_seconds == {"frame": 0.01}
    assert out.attention_info["hop1_video"].frame_seconds["frame"] == pytest.approx(1 / 3)
    assert out.attention_info["hop3_text"].axes == ("batch", "word")
    assert out.embeddings.shape == (2, 200 + 200 + 128)


def test_two_modality_hopping_is_mha_order() -> None:
    model = create_model("amh_at", n_hops=3).eval()
    assert model.inputs == ("audio", "text")
    out = model(**_inputs({"audio": [20, 11], "text": [5, 3]}, DIMS))
    assert list(out.attentions) == ["hop1_text", "hop2_audio", "hop3_text"]
    assert out.embeddings.shape == (2, 400)


def test_hops_match_a_hand_computation_of_eqs_2_to_4() -> None:
    torch.manual_seed(0)
    model = create_model("amh", n_hops=3).eval()
    x = _inputs({"audio": [20, 13], "text": [6, 4], "video": [5, 3]}, DIMS)
    out = model(**x)
    for b in range(2):
        # Encode each row alone, unpadded, with the GRUs directly (no packing, no masks).
        h, last = {}, {}
        for m in ("audio", "text", "video"):
            n = int(x[f"{m}_mask"][b].sum())
            seq, _ = model.encoders[m](x[m][b : b + 1, :n])
            h[m], last[m] = seq[0], seq[0, -1]

        def hop(k: int, context: torch.Tensor, target: str) -> tuple[torch.Tensor, torch.Tensor]:
            lin = model.hops[k].proj
            a = torch.softmax(h[target] @ (lin.weight @ context + lin.bias), dim=0)
            return a, a @ h[target]

        a1, v1 = hop(0, torch.cat([last["audio"], last["text"]]), "video")  # eq. 2
        a2, a_1 = hop(1, torch.cat([last["text"], v1]), "audio")  # eq. 3
        a3, t_1 = hop(2, torch.cat([a_1, v1]), "text")  # eq. 4
        for got, want in ((out.attentions["hop1_video"], a1), (out.attentions["hop2_audio"], a2), (out.attentions["hop3_text"], a3)):
            n = want.shape[0]
            torch.testing.assert_close(got[b, :n], want, rtol=1e-4, atol=1e-5)
            assert got[b, n:].abs().sum() == 0  # padding gets no weight
        torch.testing.assert_close(out.embeddings[b], torch.cat([a_1, t_1, v1]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x: x.pop("video"), "missing input 'video'"),
        (lambda x: x.update(text=torch.zeros(2, 6, 300)), "'text' has feature size 300"),
        (lambda x: x["audio_mask"].__setitem__(1, False), "'audio' is all padding"),
    ],
)
def test_bad_input_names_model_and_input(change, message: str) -> None:
    model = create_model("amh", n_hops=1)
    x = _inputs({"audio": [8, 5], "text": [6, 4], "video": [3, 2]}, DIMS)
    change(x)
    with pytest.raises(ValueError, match="'amh'") as err:
        model(**x)
    assert message in str(err.value)


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="hop_order"):
        create_model("amh", hop_order=("audio", "speech"))
    with pytest.raises(ValueError, match="n_hops"):
        create_model("amh", n_hops=0)


# --------------------------------------------------------------------------- dropout
def _gru_inputs(model: torch.nn.Module, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What each modality's GRU receives (its real steps), captured by a pre-hook."""
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    for m, gru in model.encoders.items():
        def grab(_module, args, m=m):
            seen[m] = args[0].data if isinstance(args[0], PackedSequence) else args[0]
        hooks.append(gru.register_forward_pre_hook(grab))
    try:
        model(**x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def test_input_dropout_per_modality_is_the_reference_codes() -> None:
    """Reference keep-probabilities 0.7 (audio, video) and 0.3 (text) on the GRU inputs: in
    train mode 30% / 70% / 30% of each GRU's input values are zero, the rest scaled by 1/keep."""
    model = create_model("amh")
    assert {m: d.p for m, d in model.input_dropout.items()} == {"audio": 0.3, "text": 0.7, "video": 0.3}
    torch.manual_seed(0)
    x = {"audio": torch.ones(8, 200, 120), "text": torch.ones(8, 50, 384), "video": torch.ones(8, 40, 32)}
    x.update({f"{m}_mask": torch.ones(v.shape[:2], dtype=torch.bool) for m, v in list(x.items())})
    seen = _gru_inputs(model.train(), x)
    for m, rate in {"audio": 0.3, "text": 0.7, "video": 0.3}.items():
        dropped = (seen[m] == 0).float().mean().item()
        assert dropped == pytest.approx(rate, abs=0.02), m
        kept = seen[m][seen[m] != 0]
        torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - rate)))
    seen = _gru_inputs(model.eval(), x)
    assert all(bool((v == 1).all()) for v in seen.values())  # nothing dropped at test time


def test_nothing_is_dropped_after_the_encoders() -> None:
    # the reference's output keep-probability is 1.0: with input dropout off, training mode is deterministic
    model = create_model("amh", n_hops=4, audio_dropout=0.0, text_dropout=0.0, video_dropout=0.0).train()
    x = _inputs({"audio": [20, 11], "text": [5, 3], "video": [4, 2]}, DIMS)
    torch.testing.assert_close(model(**x).logits, model(**x).logits, rtol=0, atol=0)
    with pytest.raises(ValueError, match="dropout"):
        create_model("amh", text_dropout=1.0)


# --------------------------------------------------------------------------- the paper's set-up
def test_paper_recipe_is_the_papers_set_up() -> None:
    p = get_recipe("amh", "paper")
    # sec. 4.1: 7 classes, 10 folds of 8:1:1 (train/development/test); sec. 4.2: Adam 1e-3, clip at norm 1
    assert (p.label_scheme, p.protocol) == ("iemocap7", "tenfold_811") and len(get_scheme(p.label_scheme).classes) == 7
    assert (p.optimizer, p.lr, p.grad_clip) == ("adam", 1e-3, 1.0)
    # the reference code: batch 128, at most 10,000 steps (~213 epochs), early stopping on the development part
    assert (p.batch_size, p.epochs, p.early_stopping_patience) == (128, 213, 5)
    assert "sec. 4.1-4.2" in p.source and "reference code" in p.source
    m = make_manifest(sessions=5, dialogs_per_session=4, turns_per_dialog=10, labels=get_scheme("iemocap7").classes)
    folds = make_folds(m, p.protocol)
    assert len(folds) == 10 and all(f.validation and f.test for f in folds)  # early stopping has data to stop on


def test_default_variant_is_amh_7() -> None:
    assert get_card("amh").default_variant == "hops_7" and create_model("amh").config.n_hops == 7
    for name in ("paper", "demo", "smoke"):
        p = get_recipe("amh", name)
        assert p.variant == "hops_7" and p.model_config["n_hops"] == 7, name
        assert get_recipe("amh", name, variant="hops_3").model_config["n_hops"] == 3
    # amh_at's default configuration is MHA over audio and text, no variant
    assert get_card("amh_at").default_variant == "" and get_recipe("amh_at", "paper").variant == ""


def test_asr_text_is_not_blocked_by_amh() -> None:
    """AMH-ASR (Table 1) is hops_7 reading ASR text: amh reads text through the recipe's text
    extractor like any model and refuses nothing about its source."""
    spec = RunSpec.create("amh", "smoke", variant="hops_7", text_source="asr")
    assert (spec.text_source, spec.settings.variant) == ("asr", "hops_7")
    assert spec.settings.features["text"].extractor == "text_static"  # the GloVe stand-in


# --------------------------------------------------------------------------- MHA pairs (Table 1)
@pytest.mark.parametrize(
    "variant, reads, order, context",
    [
        ("", ("audio", "text"), ["hop1_text", "hop2_audio"], "audio"),  # MHA [12], A+T: text first
        ("text_video", ("text", "video"), ["hop1_video", "hop2_text"], "text"),  # T+V
        ("audio_video", ("audio", "video"), ["hop1_video", "hop2_audio"], "audio"),  # A+V
    ],
)
def test_mha_pairs_read_only_their_modalities(variant: str, reads: tuple, order: list, context: str) -> None:
    recipe = get_recipe("amh_at", "paper", variant=variant or None)
    assert recipe.variant == variant and model_inputs_of("amh_at", recipe) == reads
    assert set(reads) <= set(recipe.features)
    torch.manual_seed(0)
    model = create_model("amh_at", **recipe.model_config).eval()
    assert model.inputs == reads and set(model.encoders) == set(reads)
    x = _inputs({m: {"audio": [20, 11], "text": [5, 3], "video": [4, 2]}[m] for m in reads}, DIMS)
    out = model(**x)
    assert list(out.attentions) == order  # MHA-2: two hops
    # hop 1 attends its target with the other modality's last GRU state as context (MHA-1)
    assert model.hops[0].proj.in_features == model.hidden[context]
    assert out.embeddings.shape == (2, sum(model.hidden[m] for m in reads))
    # the third modality is not read: anything passed for it changes nothing
    (gone,) = set(("audio", "text", "video")) - set(reads)
    junk = _inputs({gone: [6, 6]}, DIMS, seed=1)
    junk[gone] = junk[gone] * 1e4
    torch.testing.assert_close(model(**x, **junk).logits, out.logits)


def test_encoders_read_the_first_steps_the_reference_reads() -> None:
    """The reference batches hold the first 750 audio frames (7.5 s), 128 words and 25 video
    frames; what follows changes nothing, and the caps are in seconds (pooled frames keep them)."""
    torch.manual_seed(0)
    model = create_model("amh", n_hops=3).eval()
    assert model.max_steps == {"audio": 750, "text": 128, "video": 25}
    x = _inputs({"audio": [800, 300], "text": [130, 9], "video": [30, 4]}, DIMS)
    out = model(**x)
    assert out.attentions["hop2_audio"].shape == (2, 750) and out.attentions["hop3_text"].shape == (2, 128)
    assert out.attentions["hop1_video"].shape == (2, 25)
    changed = {k: v.clone() for k, v in x.items()}
    changed["audio"][:, 750:] = 1e3
    changed["text"][:, 128:] = -1e3
    changed["video"][:, 25:] = 1e3
    torch.testing.assert_close(model(**changed).logits, out.logits)
    cut = {m: x[m][:, :n] for m, n in model.max_steps.items()}
    cut.update({f"{m}_mask": x[f"{m}_mask"][:, :n] for m, n in model.max_steps.items()})
    torch.testing.assert_close(model(**cut).logits, out.logits)
    # 4x pooled audio frames (40 ms): still 7.5 s; None reads everything
    assert create_model("amh", audio_frame_seconds=0.04).max_steps["audio"] == 188
    uncapped = create_model("amh", n_hops=3, max_audio_seconds=None, max_words=None, max_video_seconds=None).eval()
    assert uncapped(**x).attentions["hop2_audio"].shape == (2, 800)
