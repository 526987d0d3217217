"""The model registry: a builder registers under its own name (timm style), a missing model
module is an error, and every card's inputs are the sequence inputs batching knows."""

from __future__ import annotations

import dataclasses

import pytest

from workbench.models import get_card, list_models, registry
from workbench.models.card import SEQUENCE_INPUTS


def test_a_builder_registers_under_its_own_name(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_CARDS", dict(registry._CARDS))
    card = dataclasses.replace(get_card("unimodal_audio"))

    @registry.register_model(card=card)
    def toy_listener(**config):
        raise NotImplementedError

    assert "toy_listener" in list_models() and get_card("toy_listener") is card
    with pytest.raises(ValueError, match="model 'toy_listener' registered twice"):
        registry.register_model(card=card)(toy_listener)
    with pytest.raises(TypeError):
        registry.register_model("toy_listener", card=card)  # the name is the function's, never repeated


def test_a_missing_model_module_is_an_error_not_a_model_gone(monkeypatch):
    monkeypatch.setattr(registry, "MODEL_MODULES", (*registry.MODEL_MODULES, "no_such_model"))
    with pytest.raises(ModuleNotFoundError, match="workbench.models.no_such_model"):
        list_models()


@pytest.mark.parametrize("name", list_models())
def test_every_card_reads_sequence_inputs(name):
    assert set(get_card(name).inputs) <= set(SEQUENCE_INPUTS)
