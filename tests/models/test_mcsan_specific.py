"""MCSAN specifics: the ablation switches of Table 3 change which maps exist and the
classifier width; the frame axis reflects both pools; conv/pool masking; the paper's set-up
(sec. 3.1-3.2): 40-d MFCC capped at 1,000 frames, 7 classes, 10 folds of 8:1:1 with early
stopping on the validation part, and MELD's recipe; the one-modality ablations of Table 3."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from workbench.corpus.labels import get_scheme
from workbench.corpus.manifest import Manifest
from workbench.features.base import get_extractor
from workbench.features.cache import FeatureCache
from workbench.models import create_model, get_card
from workbench.protocols import make_folds
from workbench.testing import make_manifest
from workbench.testing.dummies import make_utterance
from workbench.testing.model_inputs import batch_for_model
from workbench.training.build import build_model, model_inputs_of
from workbench.training.inputs import load_input_features
from workbench.training.recipes import get_recipe

A_DIM = 40  # the paper's 40 MFCC (sec. 3.2)


def _inputs(a_lens: list[int], t_lens: list[int], pad: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ta, tt = max(a_lens) + pad, max(t_lens) + pad
    a_mask = torch.arange(ta)[None, :] < torch.tensor(a_lens)[:, None]
    t_mask = torch.arange(tt)[None, :] < torch.tensor(t_lens)[:, None]
    audio = torch.randn(len(a_lens), ta, A_DIM, generator=g)
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
    x["audio"] = torch.cat([x["audio"]] * 3, dim=-1)  # MFCC-120 where MFCC-40 is expected
    with pytest.raises(ValueError, match="'audio' has feature size 120, expected 40"):
        model(**x)
    with pytest.raises(ValueError, match="cross-attention needs both audio and text.*use_cross=False"):
        create_model("mcsan", modalities=("text",))
    with pytest.raises(ValueError, match="modalities"):
        create_model("mcsan", modalities=("text", "video"), use_cross=False)


# --------------------------------------------------------------------------- the paper's set-up
def test_paper_recipe_is_the_papers_set_up() -> None:
    p = get_recipe("mcsan", "paper")
    assert p.variant == "" and get_card("mcsan").default_variant == ""
    # sec. 3.1: 7 classes, 10 folds of 8:1:1; sec. 3.2: Adam 1e-3, batch 256, at most 30 epochs
    assert (p.optimizer, p.lr, p.batch_size, p.epochs) == ("adam", 1e-3, 256, 30)
    assert (p.label_scheme, p.protocol, p.early_stopping_patience) == ("iemocap7", "tenfold_811", 5)
    assert len(get_scheme(p.label_scheme).classes) == 7
    assert p.source == "Sun et al. 2021, sec. 3.1-3.2"
    # early stopping has a validation part to stop on in every fold
    m = make_manifest(sessions=5, dialogs_per_session=4, turns_per_dialog=10, labels=get_scheme("iemocap7").classes)
    folds = make_folds(m, p.protocol)
    assert len(folds) == 10 and all(f.validation and f.test for f in folds)
    assert all(abs(len(f.train) / len(m) - 0.8) < 0.05 for f in folds)


def test_audio_is_40_mfcc_with_the_first_1000_frames_kept() -> None:
    for name in ("paper", "demo", "smoke"):
        spec = get_recipe("mcsan", name).features["audio"]
        ext = get_extractor(spec.extractor, **spec.config)
        assert (spec.extractor, ext.dim, ext.frame_seconds, ext.config.max_frames) == ("mfcc40", 40, 0.01, 1000)
        assert ext.config.n_mfcc == 40 and (ext.config.win_length, ext.config.hop_length) == (400, 160)  # 25 / 10 ms
    assert get_recipe("mcsan", "paper").features["audio"].normalise == "global"  # z-normalised (sec. 3.2)
    # the model built from the recipe's features reads 40-d frames
    recipe = get_recipe("mcsan", "paper")
    ext = get_extractor(recipe.features["audio"].extractor)
    feats = {"audio": SimpleNamespace(dim=ext.dim, frame_seconds=ext.frame_seconds),
             "text": SimpleNamespace(dim=384, frame_seconds=None)}
    model, config = build_model("mcsan", recipe, None, feats, n_classes=7)
    assert config["audio_dim"] == 40 and model.conv1.in_channels == 40 and model.classifier.out_features == 7


def _wav(tmp_path, utt_id: str, seconds: float):
    t = np.arange(int(seconds * 16000)) / 16000
    y = (0.3 * np.sin(2 * np.pi * (150 + 40 * t) * t)).astype(np.float32)
    path = tmp_path / f"{utt_id}.wav"
    sf.write(path, y, 16000)
    return make_utterance(id=utt_id, audio_path=str(path), duration=seconds)


def test_the_1000_frame_cap_reaches_the_model_inputs(tmp_path) -> None:
    """Through the feature pipeline: a 13 s utterance is cut to its first 10 s, a 3 s one is
    kept whole; the CPU recipes pool the capped frames (4x: 250)."""
    manifest = Manifest([_wav(tmp_path, "Ses01F_impro01_F000", 13.0), _wav(tmp_path, "Ses01F_impro01_F001", 3.0)])
    cache = FeatureCache(tmp_path / "cache")
    paper = load_input_features(manifest, get_recipe("mcsan", "paper"), ("audio",), cache=cache, progress=False)
    long, short = (np.asarray(paper["audio"].data[u.id]) for u in manifest)
    assert long.shape == (1000, 40) and short.shape == (301, 40)
    # the first 1,000 frames, not the centre: equal to the uncapped extraction's head
    whole = get_extractor("mfcc40", max_frames=None, device="cpu").extract(manifest[0])
    assert whole.shape == (1301, 40)
    np.testing.assert_allclose(long, whole[:1000], atol=1e-5)
    demo = load_input_features(manifest, get_recipe("mcsan", "demo"), ("audio",), cache=cache, progress=False)["audio"]
    assert np.asarray(demo.data[manifest[0].id]).shape == (250, 40) and demo.frame_seconds == pytest.approx(0.04)


# --------------------------------------------------------------------------- w/o audio, w/o text (Table 3)
@pytest.mark.parametrize("variant, kept, gone", [("no_audio", "text", "audio"), ("no_text", "audio", "text")])
def test_one_modality_variants_read_only_that_modality(variant: str, kept: str, gone: str) -> None:
    card = get_card("mcsan")
    recipe = get_recipe("mcsan", "smoke", variant=variant)
    assert model_inputs_of("mcsan", recipe) == (kept,) == card.model_inputs(card.variant(variant).config)
    model = create_model("mcsan", **recipe.model_config)
    assert model.inputs == (kept,)
    names = [n for n, _ in model.named_parameters()]
    own = {"audio": ("conv", "audio_lstm", "self_audio"), "text": ("text_lstm", "self_text")}
    assert not any(n.startswith(own[gone]) for n in names) and not any(n.startswith("cross") for n in names)
    assert any(n.startswith(own[kept]) for n in names)
    model.eval()
    x = batch_for_model(model, batch=2, seed=0)
    assert set(x) == {kept, f"{kept}_mask"}
    out = model(**x)
    assert set(out.attentions) == {f"self_{kept}"} and out.embeddings.shape == (2, model.config.hidden)
    # an input of the other modality is not read: anything there changes nothing
    junk = {gone: torch.full((2, 7, 40 if gone == "audio" else 384), 1e4),
            f"{gone}_mask": torch.ones(2, 7, dtype=torch.bool)}
    with torch.no_grad():
        torch.testing.assert_close(model(**x, **junk).logits, out.logits)


@pytest.mark.parametrize("variant", ["no_audio", "no_text"])
def test_one_modality_variants_overfit_a_tiny_batch(variant: str) -> None:
    torch.manual_seed(0)
    config = {**get_card("mcsan").variant(variant).config, "hidden": 16, "heads": 2, "ff_dim": 32, "dropout": 0.0}
    model = create_model("mcsan", **config).train()
    labels = torch.arange(16) % 4
    batch = batch_for_model(model, batch=16, seed=5, labels=labels, class_signal=1.0,
                            lengths={"audio": (12, 24), "text": (3, 6)})
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        opt.zero_grad()
        F.cross_entropy(model(**batch).logits, labels).backward()
        opt.step()
    with torch.no_grad():
        assert F.cross_entropy(model.eval()(**batch).logits, labels).item() < 0.2


# --------------------------------------------------------------------------- MELD (Table 2)
def test_meld_variant_is_the_papers_meld_recipe() -> None:
    p = get_recipe("mcsan", "paper", variant="meld")
    # sec. 3.2: Adam at 5e-4 on MELD, batch 256, at most 20 epochs; sec. 3.1: the official split
    assert (p.variant, p.optimizer, p.lr, p.batch_size, p.epochs) == ("meld", "adam", 5e-4, 256, 20)
    assert (p.label_scheme, p.protocol, p.early_stopping_patience) == ("meld7", "official", 5)
    assert get_scheme("meld7").classes == ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
    assert p.model_config == {} and p.features["audio"].extractor == "mfcc40"  # same model and features
    # MELD's dev split is the validation set early stopping reads
    folds = make_folds(make_manifest(sessions=3, splits=True), "official")
    assert all(f.validation for f in folds)
    # a CPU recipe keeps the MELD split and classes
    demo = get_recipe("mcsan", "demo", variant="meld")
    assert (demo.protocol, demo.label_scheme) == ("official", "meld7")
