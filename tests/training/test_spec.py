"""RunSpec refuses what cannot run, naming the model, the variant or the field."""

from __future__ import annotations

import pytest

from workbench.training.spec import RunSpec, SpecError


def test_unknown_variant_names_the_model_and_the_declared_ones():
    with pytest.raises(SpecError, match=r"model 'amh': unknown variant 'hops_99'; declared: \['audio_text', 'hops_1'"):
        RunSpec.create("amh", "demo", variant="hops_99")


def test_variant_is_recorded_and_the_default_is_named():
    assert RunSpec.create("amh", "demo", variant="hops_3").settings.variant == "hops_3"
    assert RunSpec.create("amh", "demo").settings.variant == "hops_7"  # the card's default_variant
    assert RunSpec.create("xu_alignment", "demo").settings.variant == ""


def test_text_source_and_label_scheme_are_checked():
    with pytest.raises(SpecError, match=r"text_source must be one of \('oracle', 'asr'\), got 'ASR'"):
        RunSpec.create("xu_alignment", "demo", text_source="ASR")
    with pytest.raises(SpecError, match="unknown label_scheme 'iemocap5'"):
        RunSpec.create("xu_alignment", "demo", label_scheme="iemocap5")
    assert RunSpec.create("xu_alignment", "demo", label_scheme="iemocap7").settings.label_scheme == "iemocap7"


def test_a_preset_built_for_another_variant_is_refused():
    from workbench.training.recipes import get_recipe

    with pytest.raises(SpecError, match="variant 'hops_3' given with a recipe built for variant 'hops_7'"):
        RunSpec.create("amh", get_recipe("amh", "demo"), variant="hops_3")
