"""The Ray backend on a local 2-CPU Ray instance: same results as the local backend, bounded
retries reported as failures, no duplicated rows when a task is retried, Ctrl-C cancels."""

from __future__ import annotations

import os
import sys
import time

import nbformat
import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ray = pytest.importorskip("ray")

from workbench import distributed  # noqa: E402
from workbench.batch import run_grid, summary_table  # noqa: E402
from workbench.cli import build_parser  # noqa: E402
from workbench.grid import load_grid  # noqa: E402
from workbench.testing import interrupt_when, make_manifest, write_notebook  # noqa: E402
from workbench.training import crossval  # noqa: E402
from workbench.training.crossval import CrossValError, InputFeatures, run_crossval  # noqa: E402
from workbench.training.presets import FeatureSpec, TrainPreset  # noqa: E402
from workbench.training.results import read_predictions, read_results  # noqa: E402

CLASSES = ("neu", "hap", "ang", "sad")
METRICS = ["wa", "ua", "macro_f1", "weighted_f1", "av_auc", "epochs_run", "best_epoch", "n_train", "n_val", "n_test"]

# Functions defined here run inside Ray workers, which cannot import this test module.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray instance for the module (starting one costs seconds); ``run_tasks`` uses
    it and leaves it running."""
    for attempt in (1, 2):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
            break
        except Exception as e:  # Ray gives its raylet a fixed 30 s to register: too short on a busy 2-core box
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(e):
                raise
    yield
    ray.shutdown()


# --------------------------------------------------------------------------- helpers
def _features(manifest, dim: int = 6) -> dict[str, InputFeatures]:
    rng = np.random.default_rng(0)
    pat = rng.normal(size=(len(CLASSES), dim))
    audio = {u.id: (rng.normal(size=(int(rng.integers(8, 30)), dim)) + 1.5 * pat[CLASSES.index(u.label)])
             .astype(np.float32) for u in manifest}
    return {"audio": InputFeatures(FeatureSpec("fake_audio", normalise="global"), audio, 0.01, dim)}


def _preset() -> TrainPreset:
    return TrainPreset(name="test", model="unimodal_audio", features={}, lr=1e-2, batch_size=8, epochs=2,
                       protocol="loso_session", model_config={"hidden": 8, "dense_layers": 0})


@pytest.fixture(scope="module")
def data():
    manifest = make_manifest(sessions=3, seed=0)
    return manifest, _features(manifest)


def _crossval(data, out, **kw):
    manifest, features = data
    return run_crossval("unimodal_audio", _preset(), corpus="dummy", corpus_preset="test", manifest=manifest,
                        features=features, out=out, progress=False, folds=[0, 2], seeds=[0, 1], **kw)


def _attempt(marker, key: str) -> int:
    """Record one attempt of ``key`` in the ``marker`` folder; the attempt's number (1-based)."""
    path = marker / f"{key}.attempts"
    with open(path, "a") as f:
        f.write("x\n")
    return len(path.read_text().splitlines())


def _always_fails(marker, key):
    _attempt(marker, key)
    raise RuntimeError(f"broken {key}")


def _fails_once(marker, key):
    if _attempt(marker, key) == 1:
        raise OSError("transient")
    return key.upper()


# --------------------------------------------------------------------------- tests
def test_ray_and_local_give_the_same_results_table(data, tmp_path):
    local = _crossval(data, tmp_path / "local")
    remote = _crossval(data, tmp_path / "ray", backend="ray", max_retries=0)
    assert remote.attrs["failed"] == []
    a = read_results(tmp_path / "local").set_index("run_id").sort_index()
    b = read_results(tmp_path / "ray").set_index("run_id").sort_index()
    assert len(a) == 4 and list(a.index) == list(b.index)
    assert list(b.columns) == list(a.columns)
    pd.testing.assert_frame_equal(a[METRICS], b[METRICS])
    assert (b["device"] == "cpu").all()
    # Same rows, same order, as the local runner returns them.
    assert list(remote["run_id"]) == list(local["run_id"])
    pa = read_predictions(tmp_path / "local").sort_values(["run_id", "utt_id"], ignore_index=True)
    pb = read_predictions(tmp_path / "ray").sort_values(["run_id", "utt_id"], ignore_index=True)
    assert pa[["run_id", "utt_id", "label", "pred"]].equals(pb[["run_id", "utt_id", "label", "pred"]])
    np.testing.assert_allclose(np.stack(pa["probs"]), np.stack(pb["probs"]), atol=1e-6)


def test_a_task_that_raises_is_retried_then_reported(tmp_path):
    calls = [("bad", (tmp_path, "bad"), {}), ("flaky", (tmp_path, "flaky"), {})]
    seen = []

    def fn(marker, key):
        return (_always_fails if key == "bad" else _fails_once)(marker, key)

    out = distributed.run_tasks(fn, calls, max_retries=2, progress=False, on_result=lambda o: seen.append(o.key))
    bad, flaky = out
    assert (bad.key, bad.ok) == ("bad", False)
    assert bad.error == "RuntimeError: broken bad (3 attempts)"
    assert (tmp_path / "bad.attempts").read_text().count("x") == 3  # 1 + max_retries, no more
    assert (flaky.ok, flaky.value) == (True, "FLAKY")
    assert (tmp_path / "flaky.attempts").read_text().count("x") == 2
    assert sorted(seen) == ["bad", "flaky"]


def test_retried_training_that_already_wrote_its_rows_is_not_duplicated(data, tmp_path, monkeypatch):
    real = crossval._run_one
    marker = tmp_path / "marker"
    marker.mkdir()

    def writes_then_dies_once(**kw):
        row = real(**kw)  # the rows are in the tables now
        if _attempt(marker, row["run_id"]) == 1:
            raise RuntimeError("worker lost after writing")
        return row

    monkeypatch.setattr(crossval, "_run_one", writes_then_dies_once)
    rows = _crossval(data, tmp_path / "runs", backend="ray", max_retries=1)
    assert rows.attrs["failed"] == [] and len(rows) == 4
    assert all((marker / f"{r}.attempts").read_text().count("x") == 2 for r in rows["run_id"])
    res, preds = read_results(tmp_path / "runs"), read_predictions(tmp_path / "runs")
    assert len(res) == 4 and res["run_id"].is_unique
    assert not preds.duplicated(["run_id", "utt_id"]).any()
    assert len(preds) == sum(res["n_test"])


def test_failed_trainings_are_listed_not_raised(data, tmp_path, monkeypatch):
    def boom(**kw):
        if kw["fold"].name == "Ses03":
            raise ValueError("no GPU memory")
        return real(**kw)

    real = crossval._run_one
    monkeypatch.setattr(crossval, "_run_one", boom)
    rows = _crossval(data, tmp_path, backend="ray", max_retries=0)
    assert sorted(rows["fold"]) == ["Ses01", "Ses01"]
    assert rows.attrs["failed"] == [
        {"fold": "Ses03", "seed": 0, "error": "ValueError: no GPU memory (1 attempt)"},
        {"fold": "Ses03", "seed": 1, "error": "ValueError: no GPU memory (1 attempt)"},
    ]
    assert sorted(read_results(tmp_path)["fold"]) == ["Ses01", "Ses01"]


def test_batch_grid_on_ray_gives_the_local_summary(tmp_path, monkeypatch):
    import workbench.batch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(workbench.batch, "_library_hash", lambda: "v1")
    write_notebook(tmp_path / "good.ipynb", "print('x is', x)")
    write_notebook(tmp_path / "bad.ipynb", "raise RuntimeError('boom ' + str(x))")
    (tmp_path / "grid.yaml").write_text("defaults: {x: 5}\nruns:\n  - notebook: good.ipynb\n    grid: {x: [2, 3]}\n"
                                        "  - notebook: bad.ipynb\n")
    out = tmp_path / "runs"
    results = run_grid(load_grid(tmp_path / "grid.yaml"), out, html=False, backend="ray", max_retries=1)
    assert [(r.name, r.status) for r in results] == [("good__x=2", "ok"), ("good__x=3", "ok"), ("bad", "failed")]
    assert "RuntimeError: boom 5" in results[2].error and results[2].error.endswith("(2 attempts)")
    assert results[2].output.is_file()  # the last attempt's executed copy, with the traceback
    executed = nbformat.read(out / "good__x=3.ipynb", as_version=4)
    assert "x is 3" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    table = summary_table(results)
    assert list(table.columns) == ["notebook", "status", "seconds", "error"]
    # the skip-if-unchanged state is kept as with the local backend
    again = run_grid(load_grid(tmp_path / "grid.yaml")[:2], out, html=False, backend="ray")
    assert [r.status for r in again] == ["skipped", "skipped"]


def test_batch_on_ray_refuses_names_outside_out(tmp_path):
    from workbench.batch import BatchError, GridCell

    write_notebook(tmp_path / "good.ipynb", "print(x)")
    victim = tmp_path / "victim.FAILED.ipynb"
    victim.write_text("precious")
    cell = GridCell(tmp_path / "good.ipynb", {}, "../victim")
    with pytest.raises(BatchError, match="victim"):  # refused before any task starts
        run_grid([cell], tmp_path / "runs", html=False, backend="ray", max_retries=0)
    with pytest.raises(BatchError, match="victim"):  # and by the task itself
        distributed.run_cell_task(cell, tmp_path / "runs", "python3")
    assert victim.read_text() == "precious"


def test_ctrl_c_during_a_batch_on_ray_sets_executing_copies_aside(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(x)")
    (tmp_path / "g.yaml").write_text("runs:\n  - notebook: slow.ipynb\n    grid: {x: [600, 601]}\n")
    out = tmp_path / "runs"
    interrupt_when(lambda: len(list(out.glob(".*.running.ipynb"))) >= 2, timeout=180)  # both tasks execute
    with pytest.raises(KeyboardInterrupt) as exc:
        run_grid(load_grid(tmp_path / "g.yaml"), out, html=False, backend="ray", max_retries=0)
    assert not list(out.glob(".*.running.ipynb"))
    assert sorted(p.name for p in out.glob("*.INTERRUPTED.ipynb")) == ["slow__x=600.INTERRUPTED.ipynb",
                                                                        "slow__x=601.INTERRUPTED.ipynb"]
    assert [r.status for r in exc.value.results] == ["interrupted", "interrupted"]
    time.sleep(2)  # a cancelled worker writes nothing after the driver set its copy aside
    assert not list(out.glob(".*.running.ipynb"))
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == pytest.approx(2)


def test_ctrl_c_cancels_outstanding_tasks(tmp_path):
    def task(key):
        if key != "fast":
            time.sleep(600)
        return key

    def interrupt(outcome):
        raise KeyboardInterrupt

    calls = [(k, (k,), {}) for k in ("fast", "slow1", "slow2")]
    with pytest.raises(KeyboardInterrupt):
        distributed.run_tasks(task, calls, progress=False, on_result=interrupt)
    # Cancelled tasks give their CPUs back (a 600 s sleep would hold them).
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == pytest.approx(2)


def test_resources_and_errors_are_checked():
    assert distributed.TaskResources().resolve(0) == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert distributed.TaskResources().resolve(2)["num_gpus"] == distributed.DEFAULT_GPU_FRACTION
    assert distributed.TaskResources(2, 1).resolve(8) == {"num_cpus": 2.0, "num_gpus": 1.0}
    with pytest.raises(ValueError, match="has no GPUs"):
        distributed.TaskResources(num_gpus=0.5).resolve(0)
    with pytest.raises(ValueError, match="max_retries"):
        distributed.run_tasks(len, [("a", ([],), {})], max_retries=-1)
    with pytest.raises(CrossValError, match="backend must be"):
        run_crossval("unimodal_audio", _preset(), manifest=make_manifest(sessions=2), backend="spark")


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[ray\]'"):
        distributed.import_ray()


def test_cli_backend_options():
    args = build_parser().parse_args(["train", "amh", "--backend", "ray", "--ray-address", "auto",
                                      "--max-retries", "0", "--gpus-per-task", "0.5"])
    assert (args.backend, args.ray_address, args.max_retries, args.gpus_per_task, args.cpus_per_task) == \
        ("ray", "auto", 0, 0.5, 1.0)
    assert build_parser().parse_args(["batch", "g.yaml", "--out", "o"]).backend == "local"
