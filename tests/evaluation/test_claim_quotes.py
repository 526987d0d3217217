"""Claims read as the papers state them: each quotes its paper verbatim, states the paper's
relation (with an equivalence margin exactly where it is ``similar``), agrees with the paper's
own numbers and compares conditions tested alike."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest

from workbench.evaluation.claims import CLAIMS, Claim
from workbench.training.recipes import get_recipe

REPO = Path(__file__).resolve().parents[2]
#: the papers' texts: $WORKBENCH_PAPERS, else ../shared/papers beside the repository (absent
#: from a clean clone, where the quote test skips)
PAPERS = Path(os.environ.get("WORKBENCH_PAPERS") or REPO.parent / "shared" / "papers")


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _paper_text(paper: str) -> str:
    if not PAPERS.is_dir():
        pytest.skip(f"the papers' texts are not here ({PAPERS}); set WORKBENCH_PAPERS to their folder")
    found = sorted(PAPERS.glob(f"{paper}_*.md"))
    if not found:
        pytest.skip(f"no text of paper {paper} in {PAPERS}")
    return _squash(found[0].read_text(encoding="utf-8"))


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_every_claim_quotes_a_sentence_of_its_paper(claim: Claim) -> None:
    assert claim.quote and len(claim.quote) <= 250, "a quote is one sentence or a part of one"
    assert _squash(claim.quote) in _paper_text(claim.paper), f"{claim.id}: quote not found in {claim.paper}"


def test_the_quote_check_finds_a_changed_word() -> None:
    # the comparison normalises whitespace only: one changed word is not found
    claim = next(c for c in CLAIMS if c.id == "krishna2020.raw_beats_spec")
    text = _paper_text(claim.paper)
    assert _squash(claim.quote.replace("  ", " ")) in text
    assert _squash(claim.quote.replace("better", "similar")) not in text


def test_similar_claims_carry_a_finite_positive_margin_and_no_other_claim_does() -> None:
    assert {c.relation for c in CLAIMS} <= {"beats", "worse", "similar"}
    for c in CLAIMS:
        if c.relation == "similar":
            assert math.isfinite(c.margin) and c.margin > 0, c.id
        else:
            assert math.isnan(c.margin), c.id
    assert sum(c.relation == "similar" for c in CLAIMS) >= 4  # Pepino's fusion strategies and Fig. 2's audio


def test_the_papers_own_numbers_satisfy_each_claim() -> None:
    # a claim the paper's own table contradicts is a misreading of it
    for c in CLAIMS:
        v = c.paper_value
        if math.isnan(v):
            continue
        if c.relation == "similar":
            assert abs(v) < c.margin, c.id
        else:
            assert (v > 0) if c.relation == "beats" else (v < 0), c.id


def test_the_misreadings_of_issue_27_are_gone() -> None:
    ids = {c.id for c in CLAIMS}
    removed = {"pepino2020.pretrained_beats_cold", "krishna2020.raw_at_least_spec",
               "sun2021.one_layer_not_worse_than_2", "yoon2020.hops_3_vs_1", "yoon2020.hops_5_vs_1",
               "yoon2020.hops_7_vs_1", "yoon2020.hops_9_vs_1"}
    assert not ids & removed
    for c in CLAIMS:  # a claim that an inconclusive run "supports" cannot fail
        assert "inconclusive" not in c.note, c.id
    by_id = {c.id: c for c in CLAIMS}
    assert by_id["krishna2020.raw_beats_spec"].relation == by_id["sun2021.one_layer_beats_2"].relation == "beats"
    assert by_id["pepino2020.pretrained_similar_cold"].relation == "similar"
    # "7 hops is best": AMH-7 against every other hop count of Table 2
    assert {c.terms[1][1].variant for c in CLAIMS if c.id.startswith("yoon2020.hops_7_beats_")} == {
        f"hops_{h}" for h in range(1, 10) if h != 7}
    # the slope up to 7 scores AMH-8 and AMH-9 with weight 0 and says why
    rise = by_id["yoon2020.hops_rise_to_7"]
    assert [w for w, c in rise.terms if c.variant in ("hops_8", "hops_9")] == [0.0, 0.0]
    assert "7-hop case" in rise.note


def _resolved(cond, recipe: str) -> tuple[str, str]:
    p = get_recipe(cond.model, recipe, variant=cond.variant or None)
    return cond.protocol or p.protocol, cond.label_scheme or p.label_scheme


@pytest.mark.parametrize("recipe", ["paper", "demo"])
def test_conditions_of_a_claim_are_tested_alike(recipe: str) -> None:
    """One class set for all of a claim's conditions; one protocol too, unless the claim is
    about protocols (then every condition names its own)."""
    for c in CLAIMS:
        conds = c.conditions()
        resolved = {_resolved(cond, recipe) for cond in conds}
        assert len({scheme for _, scheme in resolved}) == 1, (c.id, recipe, resolved)
        pinned = [cond.protocol is not None for cond in conds]
        if any(pinned) and len({cond.protocol for cond in conds}) > 1:
            assert all(pinned), c.id
        else:
            assert len({proto for proto, _ in resolved}) == 1, (c.id, recipe, resolved)


def test_cross_paper_claims_pin_protocol_and_class_set() -> None:
    cma_xu = next(c for c in CLAIMS if c.id == "krishna2020.cma_beats_xu")
    assert {(cond.model, cond.protocol, cond.label_scheme) for cond in cma_xu.conditions()} == {
        ("cma_raw", "loso_session", "iemocap4"), ("xu_alignment", "loso_session", "iemocap4")}
