"""Tiny in-memory corpora and features for the training tests (no audio, no cache)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.corpus.manifest import Manifest
from workbench.testing import make_manifest
from workbench.training.inputs import InputFeatures
from workbench.training.recipes import FeatureSpec, Recipe

CLASSES = ("neu", "hap", "ang", "sad")


def fake_features(manifest: Manifest, audio_dim: int = 6, text_dim: int = 5, signal: float = 1.5,
                  seed: int = 0) -> dict[str, InputFeatures]:
    """Audio (T, audio_dim) at 0.01 s and text (W, text_dim) per utterance, each carrying a
    per-class offset of size ``signal`` so a model can learn the labels."""
    rng = np.random.default_rng(seed)
    a_pat = rng.normal(size=(len(CLASSES), audio_dim))
    t_pat = rng.normal(size=(len(CLASSES), text_dim))
    audio, text = {}, {}
    for u in manifest:
        k = CLASSES.index(u.label)
        t = int(rng.integers(8, 30))
        w = int(rng.integers(2, 7))
        audio[u.id] = (rng.normal(size=(t, audio_dim)) + signal * a_pat[k]).astype(np.float32)
        text[u.id] = (rng.normal(size=(w, text_dim)) + signal * t_pat[k]).astype(np.float32)
    return {
        "audio": InputFeatures(FeatureSpec("fake_audio", normalise="global"), audio, 0.01, audio_dim),
        "text": InputFeatures(FeatureSpec("fake_text"), text, None, text_dim),
    }


def tiny_recipe(model: str = "unimodal_audio", **changes) -> Recipe:
    base = Recipe(name="test", model=model, features={}, lr=1e-2, batch_size=8, epochs=3,
                       protocol="loso_session", model_config={"hidden": 8, "dense_layers": 0})
    return base.replace(**changes)


@pytest.fixture(name="tiny_recipe")
def tiny_recipe_fixture():
    return tiny_recipe


@pytest.fixture(name="fake_features")
def fake_features_fixture():
    return fake_features


@pytest.fixture
def manifest() -> Manifest:
    return make_manifest(sessions=3, seed=0)


@pytest.fixture
def features(manifest):
    return fake_features(manifest)
