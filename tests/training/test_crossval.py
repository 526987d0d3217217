"""Cross-validation runs: run dirs, results/predictions tables, crash safety, bad input."""

from __future__ import annotations

import errno
import json

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.errors import DiskFullError
from workbench.training import results as results_mod
from workbench.training.crossval import CrossValError, run_crossval
from workbench.training.data import SERDataset, collate
from workbench.training.inputs import InputError
from workbench.training.metrics import classification_metrics
from workbench.training.results import PREDICTION_COLUMNS, RESULT_COLUMNS, ResultsError, read_predictions, read_results
from workbench.training.runs import load_trained
from workbench.training.spec import CorpusOptions, RunSpec, SpecError
from workbench.training.strategies import StrategyError
from workbench.training.trainer import predict


def _run(manifest, features, out, tiny_recipe, model="unimodal_audio", recipe=None, rerun=False, **spec):
    spec = RunSpec.create(model, recipe or tiny_recipe(), **spec)
    return run_crossval(spec, CorpusOptions("dummy", size="test"), manifest=manifest, features=features, runs_root=out,
                        rerun=rerun, progress=False)


def test_rows_run_dirs_and_predictions_follow_the_schema(manifest, features, tmp_path, tiny_recipe):
    rows = _run(manifest, features, tmp_path, tiny_recipe, folds=[0, "Ses03"], seeds=[0, 1])
    res, preds = read_results(tmp_path), read_predictions(tmp_path)
    assert list(res.columns) == RESULT_COLUMNS and list(preds.columns) == PREDICTION_COLUMNS
    assert len(res) == 4 and sorted(res["fold"].unique()) == ["Ses01", "Ses03"]
    assert res["run_id"].is_unique and len(preds) == 2 * (30 + 30)
    r = res.iloc[0]
    assert r["run_id"] == f"unimodal_audio-{r['config_hash'][:8]}-dummy-loso_session-{r['fold']}-s{r['seed']}"
    assert (r["n_train"], r["n_test"]) == (60, 30)
    # Metrics in the row are those of its predictions, recomputed independently.
    p = preds[preds["run_id"] == r["run_id"]]
    m = classification_metrics(p["label"], p["pred"], json.loads(r["classes"]), np.stack(p["probs"].to_numpy()))
    assert r["ua"] == pytest.approx(m["ua"]) and r["av_auc"] == pytest.approx(m["av_auc"])
    run_dir = tmp_path / "train" / r["run_id"]
    for name in ("config.json", "folds.json", "metrics.csv", "last.pt", "best.pt", "predictions.parquet"):
        assert (run_dir / name).is_file(), name
    assert len(rows) == 4


def test_two_runs_with_one_seed_give_identical_metrics(manifest, features, tmp_path, tiny_recipe):
    a = _run(manifest, features, tmp_path / "a", tiny_recipe, folds=[1])
    b = _run(manifest, features, tmp_path / "b", tiny_recipe, folds=[1])
    cols = ["wa", "ua", "macro_f1", "weighted_f1", "av_auc"]
    assert a[cols].to_dict() == b[cols].to_dict()


def test_load_trained_rebuilds_the_same_predictions(manifest, features, tmp_path, tiny_recipe):
    row = _run(manifest, features, tmp_path, tiny_recipe, folds=[0]).iloc[0]
    model, config = load_trained(row["run_dir"])
    assert config["fold"] == "Ses01" and config["model"] == "unimodal_audio"
    preds = pd.read_parquet(f"{row['run_dir']}/predictions.parquet")
    # Rebuild the normalised test inputs the way the run did (global stats of its train ids).
    train = [u.id for u in manifest if u.session != "Ses01"]
    x = features["audio"].data
    cat = np.concatenate([x[i] for i in train]).astype(np.float64)
    mean, std = cat.mean(0), cat.std(0)
    ids = list(preds["utt_id"][:4])
    data = {"audio": {i: ((x[i] - mean) / std).astype(np.float32) for i in ids}}
    ds = SERDataset(manifest, ids, data, json.loads(row["classes"]))
    out = predict(model, collate([ds[k] for k in range(len(ids))]))
    np.testing.assert_allclose(out["probs"].numpy(), np.stack(preds["probs"][:4].to_numpy()), atol=1e-4)


def test_rerun_replaces_rows_without_duplicates(manifest, features, tmp_path, tiny_recipe):
    rows = _run(manifest, features, tmp_path, tiny_recipe, folds=[0])
    assert (rows.attrs["trained"], rows.attrs["reused"], rows.attrs["runs_root"]) == (1, 0, tmp_path)
    first = read_results(tmp_path)
    rows = _run(manifest, features, tmp_path, tiny_recipe, folds=[0, 1])  # fold 0 reused, not retrained
    assert (rows.attrs["trained"], rows.attrs["reused"]) == (1, 1)
    rows = _run(manifest, features, tmp_path, tiny_recipe, folds=[0, 1], rerun=True)
    assert (rows.attrs["trained"], rows.attrs["reused"]) == (2, 0)
    res, preds = read_results(tmp_path), read_predictions(tmp_path)
    assert len(res) == 2 and res["run_id"].is_unique
    assert not preds.duplicated(["run_id", "utt_id"]).any() and len(preds) == 60
    assert res.set_index("run_id").loc[first["run_id"][0], "ua"] == pytest.approx(first["ua"][0])


def test_crash_mid_write_leaves_old_table_intact(manifest, features, tmp_path, tiny_recipe, monkeypatch):
    _run(manifest, features, tmp_path, tiny_recipe, folds=[0])
    path = tmp_path / "results" / "results.parquet"
    before = path.read_bytes()

    def half_write(frame, tmp):
        tmp.write_bytes(b"PAR1 partial")  # a torn file ...
        raise OSError("disk full")  # ... then the crash

    monkeypatch.setattr(results_mod, "_write_parquet", half_write)
    with pytest.raises(OSError, match="disk full"):
        _run(manifest, features, tmp_path, tiny_recipe, folds=[1])
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.startswith(".")) == \
        ["predictions.parquet", "results.parquet"]
    monkeypatch.undo()
    assert len(read_results(tmp_path)) == 1


def test_bad_input_gives_clear_errors(manifest, features, tmp_path, tiny_recipe):
    # A class with no training utterances in a fold.
    sad_only_in_ses01 = manifest.subset([u.id for u in manifest if u.label != "sad" or u.session == "Ses01"])
    with pytest.raises(CrossValError, match=r"fold 'Ses01'.*\['sad'\] have no training utterances"):
        _run(sad_only_in_ses01, features, tmp_path, tiny_recipe, folds=[0])
    # Features missing for some utterances.
    gone = manifest.ids[3]
    broken = dict(features)
    broken["audio"] = type(features["audio"])(features["audio"].spec, {k: v for k, v in features["audio"].data.items()
                                                                         if k != gone}, 0.01, 6)
    with pytest.raises(InputError, match=f"input 'audio' .*{gone}.*FeatureCache"):
        _run(manifest, broken, tmp_path, tiny_recipe)
    # Unknown fold, empty fold selection.
    with pytest.raises(CrossValError, match="unknown fold 'Ses09'"):
        _run(manifest, features, tmp_path, tiny_recipe, folds=["Ses09"])
    with pytest.raises(CrossValError, match="no folds selected"):
        _run(manifest, features, tmp_path, tiny_recipe, folds=[])
    assert not (tmp_path / "results" / "results.parquet").exists()


def test_multimodal_model_with_word_spans_trains(manifest, features, tmp_path, tiny_recipe):
    recipe = tiny_recipe("xu_alignment_hard", model_config={"hidden": 8, "heads": 2, "attn_dim": 4, "fc_dim": 8},
                         epochs=1)
    rows = _run(manifest, features, tmp_path, tiny_recipe, "xu_alignment_hard", recipe, folds=[0])
    assert rows["n_test"].iloc[0] == 30 and 0.0 <= rows["ua"].iloc[0] <= 1.0
    model, config = load_trained(rows["run_dir"].iloc[0])
    assert config["model_config"]["audio_dim"] == 6 and config["model_config"]["text_dim"] == 5
    assert isinstance(model, torch.nn.Module)


@pytest.mark.parametrize("model, strategy", [("pepino_late", "pretrained"), ("pepino_early", "warm_start")])
def test_pepino_strategies_pretrain_the_branches_then_freeze_them(manifest, features, tmp_path, tiny_recipe, model,
                                                                   strategy):
    small = {"text_dense": 8, "text_filters": 8, "audio_filters": 8, "fusion_hidden": 8}
    recipe = tiny_recipe(model, model_config=small, fusion_strategy=strategy, epochs=2)
    rows = _run(manifest, features, tmp_path, tiny_recipe, model, recipe, folds=[0])
    run_dir = tmp_path / "train" / rows["run_id"].iloc[0]
    fused = load_trained(run_dir)[0].state_dict()
    branch_runs = json.loads((run_dir / "config.json").read_text())["branch_runs"]
    assert sorted(branch_runs) == ["audio", "text"]
    for branch in ("text", "audio"):
        # the branch is a normal run of the branch model, in the results table
        assert branch_runs[branch].startswith(f"pepino_{branch}-") and branch_runs[branch] in set(read_results(tmp_path)["run_id"])
        alone = torch.load(tmp_path / "train" / branch_runs[branch] / "best.pt", weights_only=True)["model"]
        assert alone, branch
        for key, value in alone.items():
            # pretrained: the whole branch stays as trained alone; warm start trains conv2 too
            # (and late fusion has no branch output layer to compare under early fusion)
            trains = strategy == "warm_start" and key.startswith(f"{branch}_branch.conv2.")
            if key not in fused or trains:
                continue
            assert torch.equal(fused[key], value), key
        changed = [k for k in alone if k.startswith(f"{branch}_branch.conv2.conv.weight")]
        assert changed and all(torch.equal(fused[k], alone[k]) != (strategy == "warm_start") for k in changed)
    # a rerun retrains the fusion run only: its branches are runs of their own, reused
    created = read_results(tmp_path).set_index("run_id")["created"]
    _run(manifest, features, tmp_path, tiny_recipe, model, recipe, folds=[0], rerun=True)
    assert json.loads((run_dir / "config.json").read_text())["branch_runs"] == branch_runs
    after = read_results(tmp_path).set_index("run_id")["created"]
    assert all(after[r] == created[r] for r in branch_runs.values()) and len(after) == 3


def test_a_second_strategy_on_the_same_fold_trains_no_branch(manifest, features, tmp_path, tiny_recipe):
    small = {"text_dense": 8, "text_filters": 8, "audio_filters": 8, "fusion_hidden": 8}
    first = tiny_recipe("pepino_late", model_config=small, fusion_strategy="pretrained", epochs=2)
    _run(manifest, features, tmp_path, tiny_recipe, "pepino_late", first, folds=[0])
    table = read_results(tmp_path)
    assert sorted(table["model"]) == ["pepino_audio", "pepino_late", "pepino_text"]
    branch_rows = table[table["model"] != "pepino_late"].set_index("run_id")["created"].to_dict()
    mtimes = {r: (tmp_path / "train" / r / "best.pt").stat().st_mtime_ns for r in branch_rows}
    second = first.replace(fusion_strategy="warm_start")
    row = _run(manifest, features, tmp_path, tiny_recipe, "pepino_late", second, folds=[0]).iloc[0]
    table = read_results(tmp_path)
    assert len(table) == 4 and sorted(table["model"]) == ["pepino_audio", "pepino_late", "pepino_late", "pepino_text"]
    assert table[table["model"] != "pepino_late"].set_index("run_id")["created"].to_dict() == branch_rows
    assert {r: (tmp_path / "train" / r / "best.pt").stat().st_mtime_ns for r in branch_rows} == mtimes
    config = json.loads((tmp_path / "train" / row["run_id"] / "config.json").read_text())
    assert sorted(config["branch_runs"].values()) == sorted(branch_rows)
    # and the branch model's own condition (same fold, seed, settings) is that run too
    audio = _run(manifest, features, tmp_path, tiny_recipe, "pepino_audio",
                 tiny_recipe("pepino_audio", model_config=small, epochs=2), folds=[0])
    assert audio["run_id"].iloc[0] == config["branch_runs"]["audio"] and len(read_results(tmp_path)) == 4


def test_branch_settings_under_a_named_recipe_are_the_branch_models_own():
    from workbench.training.recipes import get_recipe
    from workbench.training.strategies import branch_settings

    for recipe in ("smoke", "demo", "paper"):
        for variant in ("pretrained", "warm_start"):
            for fusion in ("pepino_late", "pepino_early"):
                settings = get_recipe(fusion, recipe, variant=variant)
                for branch in ("pepino_audio", "pepino_text"):
                    assert branch_settings(settings, branch) == get_recipe(branch, recipe), (recipe, variant, branch)
    epochs = get_recipe("pepino_late", "demo", variant="pretrained").replace(epochs=3)
    assert branch_settings(epochs, "pepino_text") == get_recipe("pepino_text", "demo").replace(epochs=3)


def test_fusion_strategy_on_another_model_is_an_error(manifest, features, tmp_path, tiny_recipe):
    with pytest.raises(StrategyError, match="pepino_early / pepino_late only"):
        _run(manifest, features, tmp_path, tiny_recipe, recipe=tiny_recipe(fusion_strategy="pretrained"))
    assert not (tmp_path / "train").exists()  # rejected before any run directory is made


def test_nan_in_one_test_utterance_is_named_before_training(manifest, features, tmp_path, tiny_recipe):
    # Per-speaker normalisation would spread the NaN to every utterance of that speaker: the
    # error must name the one utterance that carries it, and come before any training.
    audio = features["audio"]
    bad = next(u.id for u in manifest if u.session == "Ses01")
    data = dict(audio.data)
    data[bad] = data[bad].copy()
    data[bad][3, 2] = np.nan
    spec = type(audio.spec)(audio.spec.extractor, normalise="speaker")
    broken = {**features, "audio": type(audio)(spec, data, audio.frame_seconds, audio.dim)}
    with pytest.raises(InputError, match=rf"input 'audio' .*1 utterance\(s\) have NaN/inf features: \['{bad}'\]"):
        _run(manifest, broken, tmp_path, tiny_recipe, folds=[0])
    assert not (tmp_path / "train").exists()


def test_epochs_below_one_are_refused(manifest, features, tmp_path, tiny_recipe):
    for epochs in (0, -1):
        with pytest.raises(SpecError, match=f"epochs must be at least 1, got {epochs}"):
            _run(manifest, features, tmp_path, tiny_recipe, folds=[0], epochs=epochs)
    assert not (tmp_path / "results").exists()


def test_garbage_results_table_is_named_and_never_overwritten(manifest, features, tmp_path, tiny_recipe):
    path = tmp_path / "results" / "results.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet at all")
    with pytest.raises(ResultsError, match=rf"{path}: unreadable results table"):
        read_results(tmp_path)
    with pytest.raises(ResultsError, match=rf"{path}: unreadable results table"):
        _run(manifest, features, tmp_path, tiny_recipe, folds=[0])
    assert path.read_bytes() == b"not parquet at all"


def test_full_disk_during_a_results_append_names_the_table(manifest, features, tmp_path, tiny_recipe, monkeypatch):
    _run(manifest, features, tmp_path, tiny_recipe, folds=[0])
    path = tmp_path / "results" / "results.parquet"
    before = path.read_bytes()

    def no_space(frame, tmp):
        tmp.write_bytes(b"PAR1 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results_mod, "_write_parquet", no_space)
    with pytest.raises(DiskFullError, match=rf"disk full while trying to write {tmp_path}/results/\w+\.parquet"):
        _run(manifest, features, tmp_path, tiny_recipe, folds=[1])
    assert path.read_bytes() == before
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_utterances_skipped_at_extraction_are_named_with_the_reason(manifest, features, tmp_path, tiny_recipe):
    audio = features["audio"]
    gone = manifest.ids[5]
    data = {k: v for k, v in audio.data.items() if k != gone}
    broken = {**features, "audio": type(audio)(audio.spec, data, 0.01, audio.dim,
                                               skipped={gone: "audio holds 3 NaN/inf sample(s)"})}
    with pytest.raises(InputError, match=rf"skipped at extraction, e\.g\. \['{gone} \(audio holds 3 NaN"):
        _run(manifest, broken, tmp_path, tiny_recipe)


def test_early_stopping_without_a_validation_set_is_refused(manifest, features, tmp_path, tiny_recipe):
    """Before: the paper recipes of AMH/MCSAN under leave-one-session-out silently trained fixed epochs."""
    recipe = tiny_recipe("unimodal_audio").replace(early_stopping_patience=3)
    with pytest.raises(CrossValError, match="stops early on validation UA.*no validation set.*'validation': 'random'"):
        _run(manifest, features, tmp_path, tiny_recipe, recipe=recipe, protocol="loso_session")
    rows = _run(manifest, features, tmp_path, tiny_recipe, recipe=recipe, protocol="loso_session",
                protocol_options={"validation": "random"})
    assert (rows["n_val"] > 0).all()


def test_rows_record_the_variant(manifest, features, tmp_path, tiny_recipe):
    recipe = tiny_recipe("unimodal_audio").replace(variant="some_variant")
    rows = _run(manifest, features, tmp_path, tiny_recipe, recipe=recipe)
    assert rows["variant"].tolist() == ["some_variant"] * len(rows)
    assert read_results(tmp_path)["variant"].eq("some_variant").all()


def test_the_parameter_rename_keeps_run_ids(manifest, features, tmp_path, tiny_recipe):
    """Issue 22 renamed CorpusOptions.preset to size, out= to runs_root= and preset= to recipe=
    (issue 30 removed the old keywords); the hashed configuration still records
    ``corpus_preset``, so run ids of existing runs stay. The literal was computed with the code
    before the rename (same manifest, features, recipe). A deliberate change of what a run's
    configuration holds changes it: update it then."""
    spec = RunSpec.create("unimodal_audio", tiny_recipe(epochs=1), folds=[0])
    new = run_crossval(spec, CorpusOptions("dummy", None, "test", 3), manifest=manifest, features=features,
                       runs_root=tmp_path / "new", progress=False).iloc[0]
    assert new["run_id"] == "unimodal_audio-acfdf5ab-dummy-loso_session-Ses01-s0"
    config = json.loads((tmp_path / "new" / "train" / new["run_id"] / "config.json").read_text())
    assert config["corpus_preset"] == "test" and config["corpus_options"] == {"name": "dummy", "root": None,
                                                                              "size": "test", "seed": 3}
    with pytest.raises(TypeError, match="preset"):
        CorpusOptions("dummy", preset="test")  # type: ignore[call-arg]


def test_corpus_options_read_the_config_of_runs_before_the_rename():
    old = {"name": "synthetic", "root": "/data/x", "preset": "smoke", "seed": 2}  # config.json before issue 22
    assert CorpusOptions.from_dict(old) == CorpusOptions("synthetic", "/data/x", "smoke", 2)
    iemocap = CorpusOptions("iemocap", "/r", "full", 1)
    assert CorpusOptions.from_dict(iemocap.to_dict()) == iemocap
    with pytest.raises(SpecError, match=r"unknown key\(s\) \['sise'\]"):
        CorpusOptions.from_dict({"name": "synthetic", "sise": "demo"})
    assert not hasattr(CorpusOptions(size="full"), "preset")  # the attribute before the rename is gone


def test_only_fusions_that_pretrain_changed_their_run_ids(manifest, features, tmp_path, tiny_recipe):
    """Their branches are now the branch models' own runs (other batches for the text branch),
    so their ids changed once; every other run keeps its id."""
    from workbench.protocols import make_folds
    from workbench.training.crossval import FoldJob, run_identity

    small = {"text_dense": 8, "text_filters": 8, "audio_filters": 8, "fusion_hidden": 8}
    folds = tuple(make_folds(manifest, "loso_session"))

    def config(strategy):
        spec = RunSpec.create("pepino_late", tiny_recipe("pepino_late", model_config=small, fusion_strategy=strategy))
        job = FoldJob(spec, CorpusOptions("dummy", size="test"), folds, 0, 0, ("neu", "hap", "ang", "sad"), tmp_path)
        return run_identity(job, manifest, features)[2]

    assert config("pretrained")["branch_training"] == "own_runs"
    assert "branch_training" not in config("cold_start")
