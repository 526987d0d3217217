"""Choosing the run notebook 06 shows: the newest matching run with weights, a given run
directory, training one when asked, and a one-line error otherwise."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.experiments.runs import RunNotFoundError, choose_run
from workbench.training.results import append_rows, results_dir
from workbench.training.spec import CorpusOptions

SMOKE = CorpusOptions("synthetic", size="smoke")


def _add(root: Path, run_id: str, created: str, corpus_preset: str = "smoke", text_source: str = "oracle",
         weights: bool = True, model: str = "xu_alignment") -> str:
    run_dir = root / "train" / run_id
    run_dir.mkdir(parents=True)
    if weights:
        (run_dir / "best.pt").write_bytes(b"")
    append_rows(results_dir(root) / "results.parquet", pd.DataFrame([dict(
        run_id=run_id, model=model, corpus="synthetic", corpus_preset=corpus_preset, text_source=text_source,
        run_dir=str(run_dir), created=created)]))
    return str(run_dir)


def test_the_newest_matching_run_with_weights_is_chosen(tmp_path):
    older = _add(tmp_path, "old", "2026-01-01")
    _add(tmp_path, "no-weights", "2026-03-01", weights=False)
    _add(tmp_path, "other-size", "2026-03-02", corpus_preset="demo")
    _add(tmp_path, "asr", "2026-03-03", text_source="asr")
    newest = _add(tmp_path, "new", "2026-02-01")
    run_dir, found = choose_run(tmp_path, "xu_alignment", SMOKE)
    assert run_dir == newest and found["run_id"].tolist() == ["new", "old"]
    assert choose_run(tmp_path, "xu_alignment", SMOKE, text_source="asr")[0].endswith("asr")
    given, _ = choose_run(tmp_path, "xu_alignment", SMOKE, run_dir=older)
    assert given == older


def test_no_run_is_an_error_unless_training_is_asked_for(tmp_path, monkeypatch):
    with pytest.raises(RunNotFoundError, match=rf"no trained 'amh' run on oracle text .* under {tmp_path}.*"
                                               "add 'amh' to train_missing") as err:
        choose_run(tmp_path, "amh", SMOKE)
    assert isinstance(err.value, WorkbenchError) and "\n" not in str(err.value)

    import workbench.training.crossval as crossval

    specs = []

    def fake_crossval(spec, corpus, backend, runs_root, progress):  # stands in for a real training run
        specs.append((spec, corpus, Path(runs_root)))
        _add(Path(runs_root), "trained", "2026-04-01", model=spec.model)
        return pd.DataFrame()

    monkeypatch.setattr(crossval, "run_crossval", fake_crossval)
    run_dir, found = choose_run(tmp_path, "amh", SMOKE, train=True, recipe="smoke")
    (spec, corpus, out), = specs
    assert run_dir.endswith("trained") and len(found) == 1
    assert (spec.model, spec.settings.name, list(spec.folds), list(spec.seeds)) == ("amh", "smoke", [0], [0])
    assert corpus == SMOKE and out == tmp_path
    choose_run(tmp_path, "amh", SMOKE, train=True)  # found now: nothing trained again
    assert len(specs) == 1
