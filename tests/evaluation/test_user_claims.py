"""A researcher's own claims: parsed from YAML/JSON, checked against the registry, judged by the
same rule as the papers' (a smoke ledger of one user claim end to end)."""

from __future__ import annotations

import json

import pytest

from workbench.evaluation.claims import ClaimError, Condition
from workbench.evaluation.user_claims import claim_from_mapping, load_claims

GOOD = """
claims:
  - id: mine.contextual_beats_static
    text: contextual beats static for Pepino's text model
    a: {model: pepino_text}
    b: {model: pepino_text, variant: static_text}
    metric: av_auc
  - id: mine.fusions_alike
    text: two fusions perform alike
    a: {model: pepino_early, variant: warm_start}
    b: {model: pepino_early, variant: cold_start}
    relation: similar
    margin: 0.01
  - id: mine.interaction
    terms:
      - {weight: 1, model: unimodal_text, protocol: random_kfold}
      - {weight: -1, model: unimodal_text, protocol: session_script}
"""


def test_a_claims_file_is_parsed_into_claims(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(GOOD)
    claims = load_claims(path)
    assert [c.id for c in claims] == ["mine.contextual_beats_static", "mine.fusions_alike", "mine.interaction"]
    first, second, third = claims
    assert first.terms == ((1.0, Condition("pepino_text")), (-1.0, Condition("pepino_text", "static_text")))
    assert first.metric == "av_auc" and first.relation == "beats" and first.paper == "user"
    assert second.relation == "similar" and second.margin == 0.01
    assert third.terms[1][1] == Condition("unimodal_text", protocol="session_script")
    as_json = tmp_path / "mine.json"
    import yaml

    as_json.write_text(json.dumps(yaml.safe_load(GOOD)["claims"]))
    assert load_claims(as_json) == claims


@pytest.mark.parametrize("raw, message", [
    ({"id": "x", "a": {"model": "nosuch"}, "b": {"model": "xu_alignment"}}, r"claim 1 \(x\): a: unknown model 'nosuch'"),
    ({"id": "x", "a": {"model": "xu_alignment", "variant": "v9"}, "b": {"model": "xu_alignment"}},
     r"a: model xu_alignment has no variant 'v9'"),
    ({"id": "x", "a": {"model": "xu_alignment"}, "b": {"model": "unimodal_text"}, "relation": "similar"},
     r"a similar claim needs a positive margin"),
    ({"id": "x", "a": {"model": "xu_alignment"}, "b": {"model": "unimodal_text"}, "relation": "better"},
     r"relation must be beats, worse or similar"),
    ({"id": "x", "a": {"model": "xu_alignment"}}, r"a comparison needs both a and b"),
    ({"id": "x", "a": {"model": "xu_alignment"}, "b": {"model": "unimodal_text"}, "colour": 1}, r"unknown field\(s\) \['colour'\]"),
    ({"id": "x", "terms": [{"model": "xu_alignment"}, {"weight": -1, "model": "unimodal_text"}]},
     r"terms\[0\] needs a finite numeric weight"),
])
def test_mistakes_are_one_line_naming_the_file_and_claim(tmp_path, raw, message):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps([raw]))
    with pytest.raises(ClaimError, match=message) as e:
        load_claims(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_a_file_that_is_not_yaml_names_itself(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("claims: [unclosed")
    with pytest.raises(ClaimError, match=r"mine.yaml: not valid YAML"):
        load_claims(path)
    with pytest.raises(ClaimError, match="a claim is a mapping"):
        claim_from_mapping(["not", "a", "mapping"])


def test_a_user_claim_runs_through_the_ledger_from_the_cli(tmp_path, monkeypatch, capsys):
    from workbench import cli

    path = tmp_path / "mine.yaml"
    path.write_text(GOOD.split("  - id: mine.fusions_alike")[0])
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "runs"))
    rc = cli.main(["reproduce", "--claim-file", str(path), "--recipe", "smoke", "--corpus-size", "smoke",
                   "--folds", "0,1", "--seeds", "0", "--n-boot", "20", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "mine.contextual_beats_static" in out and "one seed: training variance not estimated" in out
    assert "accounts for: test utterances" in out
    import pandas as pd

    ledger = pd.read_parquet(tmp_path / "runs" / "reproduce" / "ledger" / "ledger.parquet")
    assert ledger["claim"].tolist() == ["mine.contextual_beats_static"] and ledger["paper"].tolist() == ["user"]
