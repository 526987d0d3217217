"""MDRE specifics the registry-driven tests do not cover: what each variant reads, the last
real GRU state, the prosodic functionals, the reference code's input limits, the recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workbench.models import create_model, get_card
from workbench.models.mdre import YOON2020_RECIPE, prosody_functionals
from workbench.testing.model_inputs import batch_for_model, pad_more, with_host_lengths
from workbench.training.recipes import get_recipe

SMALL = {"audio_hidden": 8, "text_hidden": 6, "video_hidden": 4, "audio_dim": 10, "text_dim": 7, "video_dim": 5,
         "prosody_dim": 6, "audio_dropout": 0.0, "text_dropout": 0.0, "video_dropout": 0.0}
READS = {
    "": ("audio", "prosody", "text"),
    "text_video": ("text", "video"),
    "audio_video": ("audio", "prosody", "video"),
    "audio_text_video": ("audio", "prosody", "text", "video"),
}
ALL_INPUTS = ("audio", "prosody", "text", "video")


def _model(variant: str = "", **config) -> torch.nn.Module:
    torch.manual_seed(0)
    over = dict(get_card("mdre").variant(variant).config) if variant else {}
    return create_model("mdre", **{**SMALL, **over, **config}).eval()


def _full_batch(model: torch.nn.Module, seed: int = 0, batch: int = 3) -> dict[str, torch.Tensor]:
    """A batch holding every input MDRE could read, whatever the variant reads."""
    c = model.config
    from workbench.testing.model_inputs import random_batch

    return random_batch(ALL_INPUTS, batch, audio_dim=c.audio_dim, text_dim=c.text_dim, video_dim=c.video_dim,
                        prosody_dim=c.prosody_dim, seed=seed)


@pytest.mark.parametrize("variant", sorted(READS))
def test_each_variant_reads_exactly_its_modalities(variant: str) -> None:
    model = _model(variant)
    assert model.inputs == READS[variant]
    assert get_card("mdre").model_inputs(dict(get_card("mdre").variant(variant).config) if variant else {}) == READS[variant]
    batch = _full_batch(model)
    with torch.no_grad():
        ref = model(**batch).logits
        for name in ALL_INPUTS:
            changed = dict(batch, **{name: batch[name] + 3.0 * torch.randn_like(batch[name])})
            moved = not torch.allclose(model(**changed).logits, ref, atol=1e-6)
            assert moved == (name in READS[variant]), f"{variant}: changing {name!r} moved the output: {moved}"
        # what the variant does not read may be missing altogether
        only = {k: v for k, v in batch.items() if k.split("_")[0] in READS[variant]}
        torch.testing.assert_close(model(**only).logits, ref)
        missing = READS[variant][0]
        with pytest.raises(ValueError, match=f"mdre.*{missing}"):
            model(**{k: v for k, v in only.items() if not k.startswith(missing)})


@pytest.mark.parametrize("variant", sorted(READS))
def test_shapes_and_no_attention(variant: str) -> None:
    model = _model(variant)
    out = model(**_full_batch(model))
    prosody = 6 * 3  # six functionals of pitch, log HNR, loudness
    half = {"audio": (8 + prosody) // 2, "text": 6 // 2, "video": 4 // 2}
    width = sum(half[m] for m in ("audio", "text", "video") if m in READS[variant])
    assert out.logits.shape == (3, 4) and out.embeddings.shape == (3, width)
    assert out.attentions == {} and out.attention_info == {}


@pytest.mark.parametrize("variant", sorted(READS))
def test_padding_changes_nothing(variant: str) -> None:
    model = _model(variant)
    batch = _full_batch(model, seed=1)
    with torch.no_grad():
        ref = model(**batch)
        padded = model(**pad_more(batch, extra=17))
        hosted = model(**with_host_lengths(pad_more(batch, extra=5)))
    torch.testing.assert_close(padded.logits, ref.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(hosted.logits, ref.logits, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("variant", sorted(READS))
def test_overfits_a_tiny_batch(variant: str) -> None:
    torch.manual_seed(0)
    model = _model(variant).train()
    labels = torch.arange(12) % 4
    lengths = {"audio": (10, 20), "prosody": (10, 20), "text": (3, 6), "video": (3, 6)}
    batch = batch_for_model(model, batch=12, seed=5, labels=labels, class_signal=1.0, lengths=lengths)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = F.cross_entropy(model(**batch).logits, labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        final = F.cross_entropy(model(**batch).logits, labels).item()
    assert final < 0.2 and final < losses[0] / 5, f"{variant}: {losses[0]:.3f} -> {final:.3f}"


def test_each_encoder_keeps_its_last_real_state() -> None:
    """The ARE/TRE encoding is the GRU state after each row's last real step (plus prosody),
    computed here on the unpadded row with the GRU alone."""
    model = _model()
    batch = _full_batch(model, seed=2)
    out = model(**batch)
    for b in range(3):
        n_a, n_t = int(batch["audio_mask"][b].sum()), int(batch["text_mask"][b].sum())
        _, h_a = model.encoders["audio"](batch["audio"][b : b + 1, :n_a])
        _, h_t = model.encoders["text"](batch["text"][b : b + 1, :n_t])
        n_p = int(batch["prosody_mask"][b].sum())
        p = prosody_functionals(batch["prosody"][b : b + 1, :n_p, [0, 3, 4]], torch.ones(1, n_p, dtype=torch.bool))
        e_a = model.project["audio"](torch.cat([h_a[0], p], dim=-1))
        e_t = model.project["text"](h_t[0])
        torch.testing.assert_close(out.embeddings[b : b + 1], torch.cat([e_a, e_t], dim=-1), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(out.logits[b : b + 1], model.classifier(torch.cat([e_a, e_t], -1)), atol=1e-5, rtol=1e-4)


def test_prosody_functionals_match_numpy_over_real_frames() -> None:
    g = torch.Generator().manual_seed(0)
    lengths = [9, 1, 4]
    x = torch.randn(3, 9, 2, generator=g)
    mask = torch.arange(9)[None, :] < torch.tensor(lengths)[:, None]
    x = torch.where(mask[..., None], x, torch.full_like(x, 1e6))  # padding must not count
    f = prosody_functionals(x, mask).reshape(3, 2, 6)
    for b, n in enumerate(lengths):
        for c in range(2):
            v = x[b, :n, c].double().numpy()
            tau = np.arange(n) / max(n - 1, 1)
            slope = np.polyfit(tau, v, 1)[0] if n > 1 else 0.0
            p10, p90 = np.percentile(v, 10), np.percentile(v, 90)
            std = np.sqrt(v.var() + 1e-5)  # masked_std's epsilon keeps flat contours differentiable
            expected = [v.mean(), std, slope, p10, p90, p90 - p10]
            np.testing.assert_allclose(f[b, c].numpy(), expected, atol=1e-4)
    # gradients reach the real frames only
    xg = x.clone().requires_grad_(True)
    prosody_functionals(xg, mask).sum().backward()
    assert torch.isfinite(xg.grad).all() and (xg.grad[~mask] == 0).all()


def test_the_reference_codes_input_limits() -> None:
    """The authors' code reads the first 750 audio frames (7.5 s at 10 ms) and 128 words."""
    model = _model()
    batch = _full_batch(model, batch=2)
    t = 800
    g = torch.Generator().manual_seed(3)
    long_audio = torch.randn(2, t, model.config.audio_dim, generator=g)
    long = dict(batch, audio=long_audio, audio_mask=torch.ones(2, t, dtype=torch.bool))
    cut = dict(batch, audio=long_audio[:, :750], audio_mask=torch.ones(2, 750, dtype=torch.bool))
    with torch.no_grad():
        torch.testing.assert_close(model(**long).logits, model(**cut).logits)
        # at 40 ms frames (4x pooled) the same 7.5 s are 188 frames
        pooled = _model(audio_frame_seconds=0.04)
        torch.testing.assert_close(pooled(**long).logits, pooled(**dict(cut, audio=long_audio[:, :188],
                                                                          audio_mask=cut["audio_mask"][:, :188])).logits)
        uncapped = _model(max_audio_seconds=None)
        assert not torch.allclose(uncapped(**long).logits, uncapped(**cut).logits)
        words = torch.randn(2, 140, model.config.text_dim, generator=g)
        many = dict(batch, text=words, text_mask=torch.ones(2, 140, dtype=torch.bool))
        first = dict(batch, text=words[:, :128], text_mask=torch.ones(2, 128, dtype=torch.bool))
        torch.testing.assert_close(model(**many).logits, model(**first).logits)


def test_without_prosody_the_are_reads_audio_only() -> None:
    model = _model(prosody=False)
    assert model.inputs == ("audio", "text")
    assert get_card("mdre").model_inputs({"prosody": False}) == ("audio", "text")
    assert model.project["audio"].in_features == 8


def test_bad_configs_name_the_model() -> None:
    with pytest.raises(ValueError, match="mdre.*modalities"):
        create_model("mdre", modalities=("audio",))
    with pytest.raises(ValueError, match="mdre.*modalities"):
        create_model("mdre", modalities=("audio", "gesture"))
    with pytest.raises(ValueError, match="mdre.*prosody_columns"):
        create_model("mdre", prosody_dim=4, prosody_columns=(0, 4))


def test_paper_recipe_is_yoon_2020s_set_up() -> None:
    p = get_recipe("mdre", "paper")
    assert (p.optimizer, p.lr, p.grad_clip, p.label_scheme, p.protocol) == ("adam", 1e-3, 1.0, "iemocap7", "tenfold_811")
    assert p.early_stopping_patience is not None and p.batch_size == 128
    assert "sec. 4.1-4.2" in p.source and "reference code" in p.notes
    assert {k: f.extractor for k, f in p.features.items()} == {
        "audio": "mfcc120", "prosody": "prosody36", "text": "text_static", "video": "visual"}
    for variant, reads in READS.items():
        q = get_recipe("mdre", "paper", variant=variant or None)
        assert (q.label_scheme, q.protocol, q.variant) == ("iemocap7", "tenfold_811", variant)
        assert get_card("mdre").model_inputs(q.model_config) == reads
    demo = get_recipe("mdre", "demo", variant="audio_text_video")
    assert demo.model_config["modalities"] == ("audio", "text", "video") and demo.model_config["audio_hidden"] == 48
    assert YOON2020_RECIPE["label_scheme"] == "iemocap7"


def test_attention_explorer_and_data_pipeline_take_an_attention_free_model(tmp_path) -> None:
    """The collate carries the ``prosody`` input; the explorer shows MDRE's predictions with no
    map to choose (and nothing raised)."""
    import soundfile as sf

    from workbench.corpus.manifest import Manifest
    from workbench.testing.dummies import make_utterance
    from workbench.training.data import SERDataset, collate
    from workbench.viz.explorer import AttentionExplorer, ExplorerRun

    classes = ["ang", "neu"]
    utts = []
    for k in range(4):
        path = tmp_path / f"u{k}.wav"
        sf.write(path, (0.1 * np.sin(np.arange(8000) * 0.05 * (k + 1))).astype(np.float32), 16000)
        utts.append(make_utterance(id=f"Ses01F_impro01_F{k:03d}", speaker="Ses01F", audio_path=str(path), start=0.0,
                                   duration=0.5, text="well hello there", label=classes[k % 2]))
    manifest = Manifest(utts)
    rng = np.random.default_rng(0)
    feats = {"audio": {u.id: rng.normal(size=(50 - k, 10)).astype(np.float32) for k, u in enumerate(utts)},
             "prosody": {u.id: rng.normal(size=(48 - k, 6)).astype(np.float32) for k, u in enumerate(utts)},
             "text": {u.id: rng.normal(size=(3, 7)).astype(np.float32) for u in utts}}
    ds = SERDataset(manifest, manifest.ids, feats, classes)
    batch = collate([ds[i] for i in range(4)])
    assert batch["prosody"].shape == (4, 48, 6) and batch["prosody_lengths"].tolist() == [48, 47, 46, 45]
    model = _model(n_classes=2)
    run = ExplorerRun("mdre test", "fold0", model, classes, manifest, ds)
    assert run.maps() == []
    ex = AttentionExplorer({"mdre test": {"fold0": run}})
    assert ex.map_dd.value is None and ex.result is not None and ex.figure is None
    assert ex.probabilities().sum() == pytest.approx(1.0, abs=1e-5)
