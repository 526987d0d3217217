"""Training recipes built from the model cards: every model x recipe x variant, the CPU
derivation rules, and the contract that generic training code names no model."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from workbench.features.base import list_extractors
from workbench.models import get_card, list_models, list_variants
from workbench.training.recipes import RECIPE_NAMES, Recipe, get_recipe

MODELS = list_models()
VARIANTS = [(m, v) for m in MODELS for v in get_card(m).variants]


def _default_config(model: str) -> dict:
    """The config of the card's default variant (AMH's hops_7): a run without a variant is it."""
    card = get_card(model)
    return dict(card.variant(card.default_variant).config) if card.default_variant else {}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("text", ["text_contextual", "text_static"])
def test_every_model_has_every_recipe(model: str, text: str) -> None:
    card = get_card(model)
    paper = get_recipe(model, "paper", text_features=text)
    assert paper.source == card.recipes["paper"]["source"] and paper.model_config == _default_config(model)
    assert set(paper.features) == set(card.inputs)
    if "text" in paper.features:
        assert paper.features["text"].extractor == text
    for name in RECIPE_NAMES:
        p = get_recipe(model, name, text_features=text)
        assert p.name == name and p.model == model
        assert Recipe.from_dict(p.to_dict()) == Recipe.from_dict(p.to_dict())  # JSON round trip
        assert {i for i in card.model_inputs(p.model_config)} - {"word_spans"} <= set(p.features)


@pytest.mark.parametrize("model", MODELS)
def test_cpu_recipes_follow_the_paper_recipe(model: str) -> None:
    paper, demo, smoke = (get_recipe(model, n) for n in RECIPE_NAMES)
    card = get_card(model)
    default = _default_config(model)
    assert demo.model_config == {**card.demo, **default} and smoke.model_config == {**card.smoke, **default}
    for p in (demo, smoke):
        assert p.optimizer == paper.optimizer and p.fusion_strategy == paper.fusion_strategy
        base = card.base_lr or paper.lr  # the paper's general rate: every variant scales by one factor
        assert p.lr == pytest.approx(paper.lr * max(base, 1e-3) * 2 / base, rel=1e-9)
        assert p.batch_size == 32 and p.grad_clip == 1.0
        assert p.early_stopping_patience is None and p.warmup_steps == 0
        assert p.protocol == ("loso_session" if paper.protocol == "tenfold_811" else paper.protocol)
        assert paper.source in p.notes
    assert (demo.epochs, smoke.epochs, smoke.max_train_utterances) == (6, 2, 96)
    # audio frames are pooled and z-normalised per speaker on a CPU; text is used as it is
    if "audio" in demo.features:
        assert demo.features["audio"].pool > 1 and demo.features["audio"].normalise == "speaker"
    if "text" in demo.features:
        assert demo.features["text"] == paper.features["text"]


def test_paper_numbers_spot_checks() -> None:
    """A few numbers stated in the papers (the full table was compared before the cards came)."""
    p = get_recipe("mcsan", "paper")
    assert (p.lr, p.batch_size, p.epochs, p.protocol) == (1e-3, 256, 30, "tenfold_811")
    p = get_recipe("amh", "paper")
    assert (p.grad_clip, p.protocol, p.features["video"].extractor) == (1.0, "tenfold_811", "visual")
    p = get_recipe("pepino_late", "paper")
    # LF-PT: lr 0.01 and no warm-up; losses weighted per instance, averaged over the batch (sec. 3)
    assert (p.lr, p.fusion_strategy, p.warmup_steps, p.class_weights, p.protocol) == (
        0.01, "pretrained", 0, "batch_size", "session_script")
    assert get_recipe("pepino_early", "paper").lr == 7e-4
    assert get_recipe("pepino_late", "demo").lr == pytest.approx(0.01 * 2e-3 / 7e-4)
    assert get_recipe("cma_raw", "demo").features["waveform"].config == {"pad": False, "max_seconds": 4.0}


@pytest.mark.parametrize("model, variant", VARIANTS)
@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_variants_apply_to_every_recipe(model: str, variant: str, name: str) -> None:
    v = get_card(model).variant(variant)
    card = get_card(model)
    p = get_recipe(model, name, variant=variant)
    # a named variant replaces the default one: the recipe's sizes, then the variant's config
    assert p.model_config == {**{"paper": {}, "demo": card.demo, "smoke": card.smoke}[name], **v.config}
    cpu_set = ("lr", "warmup_steps", "early_stopping_patience", "batch_size", "grad_clip", "epochs",
               "protocol")  # demo/smoke set these (10 folds of 8:1:1 become leave one session out)
    for key, value in v.recipe.items():
        if key == "notes":  # a variant's notes replace the recipe's and get the variant's tag
            assert name != "paper" or p.notes.startswith(value), p.notes
        elif name == "paper" or key not in cpu_set:
            assert getattr(p, key) == value, key
    for key, extractor in v.inputs.items():
        assert p.features[key].extractor == extractor
    assert f"variant {variant}" in p.notes


def test_variant_learning_rate_carries_into_the_cpu_recipes() -> None:
    # Pepino et al. sec. 3: warm start fine-tunes at 1e-4; the CPU rule doubles max(lr, 1e-3)
    # of the paper's general rate (7e-4 -> 2e-3) and scales the variants' rates alike
    assert get_recipe("pepino_early", "paper", variant="warm_start").lr == 1e-4
    assert get_recipe("pepino_early", "demo", variant="warm_start").lr == pytest.approx(1e-4 * 2e-3 / 7e-4)
    assert get_recipe("pepino_early", "demo", variant="cold_start").lr == 2e-3  # unchanged: the general rate
    assert get_recipe("pepino_late", "demo", variant="cold_start").fusion_strategy == "cold_start"


@pytest.mark.parametrize("name", ["demo", "smoke"])
def test_cpu_recipes_keep_the_papers_learning_rate_ratios_between_strategies(name: str) -> None:
    # EF-CS, EF-PT, EF-WS and LF-PT train at 7e-4, 7e-4, 1e-4 and 0.01 (Pepino sec. 3): one
    # factor for all four, which used to give 2e-3, 2e-3, 2e-3 and 0.02
    systems = [("pepino_early", "cold_start"), ("pepino_early", "pretrained"), ("pepino_early", "warm_start"),
               ("pepino_late", "pretrained")]
    paper = [get_recipe(m, "paper", variant=v).lr for m, v in systems]
    cpu = [get_recipe(m, name, variant=v).lr for m, v in systems]
    assert paper == [7e-4, 7e-4, 1e-4, 0.01]
    assert [c / p for c, p in zip(cpu, paper)] == pytest.approx([2e-3 / 7e-4] * 4, rel=1e-9)
    # the branches pre-train at the single-branch models' own rates, the same factor's
    assert get_recipe("pepino_text", name).lr == get_recipe("pepino_audio", name).lr == cpu[0]
    # a model whose variants keep the paper rate is unchanged: twice max(lr, 1e-3)
    assert get_recipe("mcsan", name).lr == 2e-3 and get_recipe("ssl_baseline", name).lr == 2e-3
    assert get_recipe("mcsan", name, variant="meld").lr == pytest.approx(1e-3)  # 5e-4 on MELD, half of 1e-3


def test_the_pretrained_fusion_budget_is_stated_on_the_card() -> None:
    for model in ("pepino_early", "pepino_late"):
        card = get_card(model)
        assert "budget" in card.variant("pretrained").note and "budget" in card.variant("warm_start").note
        assert "budget" not in card.variant("cold_start").note


def test_unknown_names_are_errors() -> None:
    with pytest.raises(ValueError, match="no_such_variant.*declared"):
        get_recipe("mcsan", "paper", variant="no_such_variant")
    with pytest.raises(ValueError, match="unknown model"):
        get_recipe("no_such_model")
    with pytest.raises(ValueError, match="unknown training recipe"):
        get_recipe("mcsan", "huge")
    assert "layers_2" in list_variants("mcsan") and list_variants("cma_spec") == {}


GENERIC = ["recipes.py", "build.py", "strategies.py"]


@pytest.mark.parametrize("module", GENERIC)
def test_generic_training_code_names_no_model(module: str) -> None:
    """What a model needs lives in its card; these modules may name models in docstrings only."""
    path = Path(__file__).resolve().parents[2] / "workbench" / "training" / module
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    strings = [n.value for n in ast.walk(tree)
               if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]
    families = {m.split("_")[0] for m in MODELS}  # "pepino", "xu", ...: prefix matching is naming too
    extractors = set(list_extractors())  # an extractor's name ("ssl_layers") is not a model's
    named = sorted({m for s in strings for m in MODELS if m in s}
                   | {s for s in strings for f in families if (s == f or s.startswith(f + "_")) and s not in extractors})
    assert not named, f"{module} names models {named}"


def test_glove_papers_read_static_word_vectors_and_bert_papers_contextual_ones():
    """Xu, Yoon, Sun and Krishna embed words with GloVe: their stand-in is MiniLM's static
    table; Pepino et al. use BERT (contextual), with GloVe as a variant."""
    for model in ("xu_alignment", "unimodal_text", "amh", "mdre", "mcsan", "cma_raw", "cma_spec"):
        assert get_recipe(model, "paper").features["text"].extractor == "text_static", model
    assert get_recipe("pepino_text", "paper").features["text"].extractor == "text_contextual"
    assert get_recipe("pepino_text", "paper", variant="static_text").features["text"].extractor == "text_static"
    assert get_recipe("xu_alignment", "demo", text_features="text_contextual").features["text"].extractor == "text_contextual"
