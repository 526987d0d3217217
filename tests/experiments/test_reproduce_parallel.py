"""``reproduce`` with ``jobs=2``: one pool over every condition, the ledger of a serial run."""

from __future__ import annotations

import json

import pytest

from workbench.evaluation.claims import Claim, Condition
from workbench.experiments.reproduce import reproduce, select_claims
from workbench.training import BackendOptions, CorpusOptions
from workbench.training.results import read_results

SMOKE = CorpusOptions("synthetic", None, "smoke")
SHARED = ["xu2019.alignment_beats_concat", "xu2019.learned_beats_hard"]  # both need xu_alignment


def test_jobs_2_gives_the_ledger_of_jobs_1(tmp_path):
    bad = Claim("test.needs_official", "test", "-", "needs a split the corpus lacks",
                ((1, Condition("xu_alignment")), (-1, Condition("xu_alignment_concat", protocol="official"))))
    claims = select_claims(claims=SHARED) + [bad]
    kw = dict(recipe="smoke", folds=[0], n_boot=20, progress=False)
    serial = reproduce(claims, SMOKE, tmp_path / "serial", **kw)
    parallel = reproduce(claims, SMOKE, tmp_path / "parallel", backend=BackendOptions(jobs=2), **kw)
    assert (parallel.attrs["trained"], parallel.attrs["reused"]) == (3, 0)  # xu_alignment once for both claims
    assert sorted(read_results(tmp_path / "parallel")["run_id"]) == sorted(read_results(tmp_path / "serial")["run_id"])
    assert parallel["verdict"].tolist() == serial["verdict"].tolist()
    assert "protocol 'official'" in parallel.set_index("claim").loc["test.needs_official", "reason"]
    for a, b in zip(serial.iloc[:2].itertuples(), parallel.iloc[:2].itertuples()):
        assert b.difference == pytest.approx(a.difference, abs=1e-6)
        assert json.loads(b.scores) == pytest.approx(json.loads(a.scores), abs=1e-4)


def test_conditions_reading_the_same_features_share_one_copy():
    from workbench.training.inputs import load_input_features
    from workbench.training.recipes import get_recipe

    manifest = SMOKE.load("iemocap4")
    memo: dict = {}
    a = load_input_features(manifest, get_recipe("xu_alignment", "smoke"), ["audio", "text"], progress=False, memo=memo)
    b = load_input_features(manifest, get_recipe("xu_alignment_concat", "smoke"), ["audio", "text"], progress=False,
                            memo=memo)
    assert a["audio"] is b["audio"] and a["text"] is b["text"]
    # another manifest (other ids, or other text) gets features of its own
    other = manifest.subset(manifest.ids[:20])
    c = load_input_features(other, get_recipe("xu_alignment", "smoke"), ["text"], progress=False, memo=memo)
    assert c["text"] is not a["text"] and len(c["text"].data) == 20
