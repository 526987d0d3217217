"""Building models from their cards (workbench.training.build) and the branch pre-training
strategy (workbench.training.strategies), for every registered model and declared variant."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from workbench.models import create_model, get_card, list_models
from workbench.training.build import build_config, build_model, model_inputs_of
from workbench.training.data import SERDataset
from workbench.training.inputs import FoldData
from workbench.training.recipes import RECIPE_NAMES, get_recipe
from workbench.training.spec import RunSpec
from workbench.training.strategies import (
    FROM_SCRATCH,
    StrategyError,
    models_with_branches,
    needs_pretraining,
    pretrain_branches,
)

MODELS = list_models()
CASES = [(m, None) for m in MODELS] + [(m, v) for m in MODELS for v in get_card(m).variants]
# Sizes no model has by default, so a dim field equal to them was set from the features.
FEATURES = {"audio": SimpleNamespace(dim=17, frame_seconds=0.04), "text": SimpleNamespace(dim=12, frame_seconds=None),
            "video": SimpleNamespace(dim=5, frame_seconds=0.5), "waveform": SimpleNamespace(dim=1, frame_seconds=1 / 16000),
            "prosody": SimpleNamespace(dim=9, frame_seconds=0.04)}


@pytest.mark.parametrize("model, variant", CASES)
@pytest.mark.parametrize("recipe_name", RECIPE_NAMES)
def test_build_sets_the_feature_sizes_of_what_the_model_reads(model: str, variant: str | None, recipe_name: str) -> None:
    recipe = get_recipe(model, recipe_name, variant=variant)
    card = get_card(model)
    net, config = build_model(model, recipe, None, FEATURES, n_classes=3)
    reads = model_inputs_of(model, recipe)
    assert tuple(net.inputs) == reads
    assert json.loads(json.dumps(config)) == config and config["n_classes"] == 3
    assert {k: v for k, v in config.items() if k in recipe.model_config} == json.loads(json.dumps(recipe.model_config))
    for name, field in card.dims.items():
        if name in reads:
            assert config[field] == FEATURES[name].dim == getattr(net.config, field), field
        else:
            assert field not in config, f"{field} set though {model} does not read {name}"
    for name, field in card.frame_periods.items():
        if name in reads:
            assert config[field] == FEATURES[name].frame_seconds == getattr(net.config, field), field
    # the stored config rebuilds the same architecture
    again = create_model(model, **config)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}


@pytest.mark.parametrize("model", MODELS)
def test_model_inputs_of_builds_nothing(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = tuple(create_model(model, **get_recipe(model, "smoke").model_config).inputs)
    monkeypatch.setattr(torch.nn.Module, "__init__", lambda *a, **k: pytest.fail("model_inputs_of built a model"))
    assert model_inputs_of(model, get_recipe(model, "smoke")) == expected


def test_options_that_change_the_inputs_change_the_sizes_set() -> None:
    amh = get_recipe("amh", "smoke")
    config = build_config("amh", amh, {"modalities": ["audio", "text"]}, FEATURES, 4)
    assert "video_dim" not in config and "video_frame_seconds" not in config and config["text_dim"] == 12
    assert model_inputs_of("amh", amh, {"modalities": ("text", "video")}) == ("text", "video")
    spec = build_config("cma_raw", get_recipe("cma_raw", "smoke"), {"front_end": "spectrogram"}, FEATURES, 4)
    assert (spec["audio_dim"], spec["audio_frame_seconds"]) == (17, 0.04)
    assert "audio_dim" not in build_config("cma_raw", get_recipe("cma_raw", "smoke"), None, FEATURES, 4)
    # a branch model built from its parent's features takes only what it reads
    text = build_config("pepino_text", get_recipe("pepino_early", "smoke"), None, FEATURES, 4)
    assert text["text_dim"] == 12 and "audio_dim" not in text
    assert build_config("mcsan", get_recipe("mcsan", "paper"), None, None, 4) == {"n_classes": 4}


def test_bad_options_are_refused_when_building() -> None:
    with pytest.raises(ValueError, match="no_such_field"):
        build_model("mcsan", get_recipe("mcsan", "smoke"), {"no_such_field": 1}, FEATURES, 4)


# --------------------------------------------------------------------------- strategies
@pytest.mark.parametrize("model", MODELS)
def test_needs_pretraining_reads_the_card(model: str) -> None:
    recipe = get_recipe(model, "smoke")
    for strategy in FROM_SCRATCH:
        assert not needs_pretraining(model, recipe.replace(fusion_strategy=strategy))
    for strategy in ("pretrained", "warm_start"):
        if get_card(model).branches:
            assert needs_pretraining(model, recipe.replace(fusion_strategy=strategy))
        else:
            with pytest.raises(StrategyError, match=f"(?s){strategy}.*{model}"):
                needs_pretraining(model, recipe.replace(fusion_strategy=strategy))


def test_models_with_branches_are_declared() -> None:
    assert models_with_branches() == [m for m in MODELS if get_card(m).branches] != []


@pytest.mark.parametrize("model", models_with_branches())
def test_pretrain_branches_loads_each_trained_branch(model, manifest, features, tiny_recipe, tmp_path) -> None:
    """Each branch model trains alone (its own run dir), then the model's hook loads it: the
    ``pretrained`` strategy keeps every loaded branch weight as trained."""
    classes = ["neu", "hap", "ang", "sad"]
    ids = [u.id for u in manifest]
    data = {k: f.data for k, f in features.items()}
    train = SERDataset(manifest, ids[:40], data, classes, audio_frame_seconds=0.01)
    val = SERDataset(manifest, ids[40:50], data, classes, audio_frame_seconds=0.01)
    small = {"text_dense": 8, "text_filters": 8, "audio_filters": 8, "fusion_hidden": 8}
    settings = tiny_recipe(model, model_config=small, fusion_strategy="pretrained", epochs=1)
    net, _ = build_model(model, settings, None, features, len(classes))
    spec = RunSpec.create(model, settings, device="cpu")
    pretrain_branches(net, spec, FoldData(train, val, val, {}), features, tmp_path, 0, progress=False)
    fused = net.state_dict()
    for branch in get_card(model).branches:
        alone = torch.load(tmp_path / f"branch_{branch}" / "best.pt", weights_only=True)["model"]
        shared = [k for k in alone if k in fused]
        assert shared and all(torch.equal(fused[k], alone[k]) for k in shared), branch
    assert not any(p.requires_grad for n, p in net.named_parameters() if "_branch." in n)


def test_pretrain_branches_refuses_a_model_without_branches(manifest, features, tiny_recipe, tmp_path) -> None:
    settings = tiny_recipe("unimodal_audio", fusion_strategy="pretrained")
    net, _ = build_model("unimodal_audio", settings, None, features, 4)
    with pytest.raises(StrategyError, match="unimodal_audio"):
        pretrain_branches(net, RunSpec.create("unimodal_audio", settings), None, features, tmp_path, 0)
