"""The task executor (workbench/distributed.py) on each backend: here, in worker processes and
on a local 2-CPU Ray instance. Same outcomes everywhere; on Ray, bounded retries (of a task that
raises and of one whose worker is killed) reported as failures, no duplicated rows when a
training is retried, Ctrl-C cancels. The batch and cross-validation adapters on Ray too.

Module-level imports stay light: worker processes import this module to find its task functions.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch  # at import: a worker unpickling this module's functions has torch, as a training's has

from workbench import distributed
from workbench.distributed import TaskFailed
from workbench.testing import interrupt_when, make_manifest, write_notebook

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
try:
    import ray
except ImportError:
    ray = None
else:
    # Functions defined here run inside Ray workers, which cannot import this test module.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

CLASSES = ("neu", "hap", "ang", "sad")
METRICS = ["wa", "ua", "macro_f1", "weighted_f1", "av_auc", "epochs_run", "best_epoch", "n_train", "n_val", "n_test"]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module (starting one costs seconds); ``run_tasks`` uses
    it and leaves it running."""
    if ray is None:
        missing = "Ray is not installed (pip install -e '.[ray]'; make install installs it)"
        if os.environ.get("WORKBENCH_REQUIRE_RAY"):  # set by make test: the Ray tests must run there
            pytest.fail(missing)
        pytest.skip(missing)
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


@pytest.fixture(params=["serial", "processes", "ray"])
def backend(request) -> dict:
    """``run_tasks`` options of each backend."""
    if request.param == "ray":
        request.getfixturevalue("local_ray")
        return {"backend": "ray"}
    return {"backend": "local", "jobs": 1 if request.param == "serial" else 2}


def _ray_cpus_come_back() -> None:
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == pytest.approx(2)


# --------------------------------------------------------------------------- helpers
def _features(manifest, dim: int = 6) -> dict:
    from workbench.training.inputs import InputFeatures
    from workbench.training.recipes import FeatureSpec

    rng = np.random.default_rng(0)
    pat = rng.normal(size=(len(CLASSES), dim))
    audio = {u.id: (rng.normal(size=(int(rng.integers(8, 30)), dim)) + 1.5 * pat[CLASSES.index(u.label)])
             .astype(np.float32) for u in manifest}
    return {"audio": InputFeatures(FeatureSpec("fake_audio", normalise="global"), audio, 0.01, dim)}


def _recipe():
    from workbench.training.recipes import Recipe

    return Recipe(name="test", model="unimodal_audio", features={}, lr=1e-2, batch_size=8, epochs=2,
                       protocol="loso_session", model_config={"hidden": 8, "dense_layers": 0})


@pytest.fixture(scope="module")
def data():
    manifest = make_manifest(sessions=3, seed=0)
    return manifest, _features(manifest)


def _crossval(data, out, **backend):
    from workbench.training.crossval import run_crossval
    from workbench.training.spec import BackendOptions, CorpusOptions, RunSpec

    manifest, features = data
    spec = RunSpec.create("unimodal_audio", _recipe(), folds=[0, 2], seeds=[0, 1])
    return run_crossval(spec, CorpusOptions("dummy", size="test"), BackendOptions(**backend), manifest=manifest,
                        features=features, runs_root=out, progress=False)


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


def _dies_once(marker, key):
    if _attempt(marker, key) == 1:
        os._exit(3)  # the worker process dies mid-task, as if killed
    return key.upper()


def _always_dies(marker, key):
    _attempt(marker, key)
    os._exit(3)


def _task(key, suffix):
    """``ok*`` take a second; ``bad`` raises; ``partial`` fails with a message and a value."""
    if key == "bad":
        raise RuntimeError(f"broken {key}")
    if key == "partial":
        raise TaskFailed("half done", {"done": 1})
    time.sleep(1.0)
    return key.upper() + suffix


def _worker_env(name):
    return os.environ.get(name)


def _threads_seen(_):
    """The thread settings a local worker runs a call under."""
    return {name: os.environ.get(name) for name in distributed.THREAD_VARIABLES}, torch.get_num_threads()


def _dies_after_fine(marker, key):
    """``fine`` returns at once; ``dies`` kills its worker once ``fine`` has returned."""
    if key == "fine":
        (marker / "fine").touch()
        return key
    deadline = time.monotonic() + 60
    while not (marker / "fine").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # fine's result reaches the driver first
    os._exit(3)


# --------------------------------------------------------------------------- the executor, every backend
def test_a_failing_task_is_reported_while_the_others_finish(backend):
    keys = ["ok1", "bad", "partial", "ok2"]
    seen = []
    out = distributed.run_tasks(_task, [(k, (k,), {}) for k in keys], distributed.BackendOptions(**backend, max_retries=0),
                                shared={"suffix": "!"}, progress=False, on_result=lambda o: seen.append(o.key))
    assert [o.key for o in out] == keys and sorted(seen) == sorted(keys)
    ok1, bad, partial, ok2 = out
    assert (ok1.ok, ok1.value, ok2.ok, ok2.value) == (True, "OK1!", True, "OK2!")
    assert ok1.seconds >= 0.9
    assert (bad.ok, bad.error, type(bad.cause)) == (False, "RuntimeError: broken bad (1 attempt)", RuntimeError)
    assert (partial.ok, partial.error, partial.value) == (False, "half done (1 attempt)", {"done": 1})
    assert seen.index("bad") < seen.index("ok2") and seen.index("partial") < seen.index("ok2")


def test_options_are_checked_before_anything_runs():
    for bad, match in [({"backend": "spark"}, "backend must be"), ({"jobs": 0}, "jobs must be"),
                       ({"max_retries": -1}, "max_retries"), ({"threads": 0}, "threads must be"),
                       ({"num_cpus": -1}, "must be >= 0"), ({"num_gpus": float("nan")}, "must be >= 0")]:
        with pytest.raises(distributed.BackendOptionsError, match=match):
            distributed.BackendOptions(**bad)
    with pytest.raises(ValueError, match="unique"):
        distributed.run_tasks(len, [("a", ([],), {}), ("a", ([],), {})])
    assert distributed.run_tasks(os._exit, []) == []


def test_local_workers_run_with_the_options_threads():
    # N trainings (or notebook kernels) on N cores must not each start one thread per core:
    # the worker's torch and the processes it starts get ``threads``.
    # 3 is above a 2-core machine's cores (CI's): torch caps a count read from the environment there, so
    # the exact count shows that the worker set it once the call's module had imported torch.
    calls = [(k, (k,), {}) for k in ("a", "b")]
    for threads in (1, 3):
        for out in distributed.run_tasks(_threads_seen, calls, distributed.BackendOptions(jobs=2, threads=threads),
                                         progress=False):
            assert out.ok, out.error
            env, torch_threads = out.value
            assert env == {name: str(threads) for name in distributed.THREAD_VARIABLES} and torch_threads == threads


def test_local_calls_run_once(tmp_path):
    # retries are the Ray backend's: locally a failure would nearly always repeat
    (out,) = distributed.run_tasks(_fails_once, [("flaky", (tmp_path, "flaky"), {})],
                                   distributed.BackendOptions(max_retries=2), progress=False)
    assert (out.ok, out.error) == (False, "OSError: transient (1 attempt)")
    assert (tmp_path / "flaky.attempts").read_text().count("x") == 1


def test_a_dead_local_worker_fails_the_unfinished_tasks(tmp_path):
    calls = [("dies", (tmp_path, "dies"), {}), ("fine", (tmp_path, "fine"), {})]
    dies, fine = distributed.run_tasks(_dies_after_fine, calls, distributed.BackendOptions(jobs=2), progress=False)
    assert (fine.ok, fine.value) == (True, "fine")
    assert not dies.ok and dies.error.startswith("BrokenProcessPool: ")


# --------------------------------------------------------------------------- Ray
def test_ray_and_local_give_the_same_results_table(data, tmp_path, local_ray):
    from workbench.training.results import read_predictions, read_results

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


def test_a_task_that_raises_is_retried_then_reported(tmp_path, local_ray):
    calls = [("bad", (tmp_path, "bad"), {}), ("flaky", (tmp_path, "flaky"), {})]
    seen = []

    def fn(marker, key):
        return (_always_fails if key == "bad" else _fails_once)(marker, key)

    out = distributed.run_tasks(fn, calls, distributed.BackendOptions("ray", max_retries=2), progress=False,
                                on_result=lambda o: seen.append(o.key))
    bad, flaky = out
    assert (bad.key, bad.ok) == ("bad", False)
    assert bad.error == "RuntimeError: broken bad (3 attempts)"
    assert (tmp_path / "bad.attempts").read_text().count("x") == 3  # 1 + max_retries, no more
    assert (flaky.ok, flaky.value) == (True, "FLAKY")
    assert (tmp_path / "flaky.attempts").read_text().count("x") == 2
    assert sorted(seen) == ["bad", "flaky"]


def test_a_worker_killed_mid_task_is_retried_then_reported(tmp_path, local_ray):
    calls = [("dies_once", (tmp_path, "dies_once"), {}), ("always", (tmp_path, "always"), {}),
             ("fine", (tmp_path, "fine"), {})]

    def fn(marker, key):
        return {"dies_once": _dies_once, "always": _always_dies, "fine": _fails_once}[key](marker, key)

    once, always, fine = distributed.run_tasks(fn, calls, distributed.BackendOptions("ray", max_retries=1),
                                                    progress=False)
    assert (once.ok, once.value) == (True, "DIES_ONCE")
    assert (tmp_path / "dies_once.attempts").read_text().count("x") == 2
    assert not always.ok and always.error.endswith("(2 attempts)") and "worker" in always.error.lower()
    assert (tmp_path / "always.attempts").read_text().count("x") == 2  # 1 + max_retries, no more
    assert (fine.ok, fine.value) == (True, "FINE")
    _ray_cpus_come_back()


def test_ray_tasks_get_the_callers_env(local_ray):
    (out,) = distributed.run_tasks(_worker_env, [("v", ("WORKBENCH_PROBE",), {})], distributed.BackendOptions("ray"),
                                   env={"WORKBENCH_PROBE": "from the driver"}, progress=False)
    assert (out.ok, out.value) == (True, "from the driver")


def test_retried_training_that_already_wrote_its_rows_is_not_duplicated(data, tmp_path, monkeypatch, local_ray):
    from workbench.training import crossval
    from workbench.training.results import read_predictions, read_results

    real = crossval.train_fold
    marker = tmp_path / "marker"
    marker.mkdir()

    def writes_then_dies_once(*args, **kw):
        row = real(*args, **kw)  # the rows are in the tables now
        if _attempt(marker, row["run_id"]) == 1:
            raise RuntimeError("worker lost after writing")
        return row

    monkeypatch.setattr(crossval, "train_fold", writes_then_dies_once)
    rows = _crossval(data, tmp_path / "runs", backend="ray", max_retries=1)
    assert rows.attrs["failed"] == [] and len(rows) == 4
    assert all((marker / f"{r}.attempts").read_text().count("x") == 2 for r in rows["run_id"])
    res, preds = read_results(tmp_path / "runs"), read_predictions(tmp_path / "runs")
    assert len(res) == 4 and res["run_id"].is_unique
    assert not preds.duplicated(["run_id", "utt_id"]).any()
    assert len(preds) == sum(res["n_test"])


def test_failed_trainings_are_listed_not_raised(data, tmp_path, monkeypatch, local_ray):
    from workbench.training import crossval
    from workbench.training.results import read_results

    def boom(job, *args, **kw):
        if job.fold.name == "Ses03":
            raise ValueError("no GPU memory")
        return real(job, *args, **kw)

    real = crossval.train_fold
    monkeypatch.setattr(crossval, "train_fold", boom)
    rows = _crossval(data, tmp_path, backend="ray", max_retries=0)
    assert sorted(rows["fold"]) == ["Ses01", "Ses01"]
    assert rows.attrs["failed"] == [
        {"fold": "Ses03", "seed": 0, "error": "ValueError: no GPU memory (1 attempt)"},
        {"fold": "Ses03", "seed": 1, "error": "ValueError: no GPU memory (1 attempt)"},
    ]
    assert sorted(read_results(tmp_path)["fold"]) == ["Ses01", "Ses01"]


def test_batch_grid_on_ray_gives_the_local_summary(tmp_path, monkeypatch, local_ray):
    import nbformat

    import workbench.batch
    from workbench.batch import run_grid, summary_table
    from workbench.grid import load_grid

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(workbench.batch, "_library_hash", lambda: "v1")
    write_notebook(tmp_path / "good.ipynb", "print('x is', x)")
    write_notebook(tmp_path / "bad.ipynb", "raise RuntimeError('boom ' + str(x))")
    (tmp_path / "grid.yaml").write_text("defaults: {x: 5}\nruns:\n  - notebook: good.ipynb\n    grid: {x: [2, 3]}\n"
                                        "  - notebook: bad.ipynb\n")
    out = tmp_path / "runs"
    results = run_grid(load_grid(tmp_path / "grid.yaml"), out, distributed.BackendOptions("ray", max_retries=1), html=False)
    assert [(r.name, r.status) for r in results] == [("good__x=2", "ok"), ("good__x=3", "ok"), ("bad", "failed")]
    assert "RuntimeError: boom 5" in results[2].error and results[2].error.endswith("(2 attempts)")
    assert results[2].output.is_file()  # the last attempt's executed copy, with the traceback
    executed = nbformat.read(out / "good__x=3.ipynb", as_version=4)
    assert "x is 3" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    table = summary_table(results)
    assert list(table.columns) == ["notebook", "status", "seconds", "error"]
    # the skip-if-unchanged state is kept as with the local backend
    again = run_grid(load_grid(tmp_path / "grid.yaml")[:2], out, distributed.BackendOptions("ray"), html=False)
    assert [r.status for r in again] == ["skipped", "skipped"]


def test_batch_on_ray_refuses_names_outside_out(tmp_path, local_ray):
    from workbench.batch import BatchError, GridCell, run_cell_task, run_grid

    write_notebook(tmp_path / "good.ipynb", "print(x)")
    victim = tmp_path / "victim.FAILED.ipynb"
    victim.write_text("precious")
    cell = GridCell(tmp_path / "good.ipynb", {}, "../victim")
    with pytest.raises(BatchError, match="victim"):  # refused before any task starts
        run_grid([cell], tmp_path / "runs", distributed.BackendOptions("ray", max_retries=0), html=False)
    with pytest.raises(BatchError, match="victim"):  # and by the task itself
        run_cell_task(cell, tmp_path / "runs", "python3")
    assert victim.read_text() == "precious"


def test_ctrl_c_during_a_batch_on_ray_sets_executing_copies_aside(tmp_path, monkeypatch, local_ray):
    from workbench.batch import run_grid
    from workbench.grid import load_grid

    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(x)")
    (tmp_path / "g.yaml").write_text("runs:\n  - notebook: slow.ipynb\n    grid: {x: [600, 601]}\n")
    out = tmp_path / "runs"
    interrupt_when(lambda: len(list(out.glob(".*.running.ipynb"))) >= 2, timeout=180)  # both tasks execute
    with pytest.raises(KeyboardInterrupt) as exc:
        run_grid(load_grid(tmp_path / "g.yaml"), out, distributed.BackendOptions("ray", max_retries=0), html=False)
    assert not list(out.glob(".*.running.ipynb"))
    assert sorted(p.name for p in out.glob("*.INTERRUPTED.ipynb")) == ["slow__x=600.INTERRUPTED.ipynb",
                                                                        "slow__x=601.INTERRUPTED.ipynb"]
    assert [r.status for r in exc.value.results] == ["interrupted", "interrupted"]
    time.sleep(2)  # a cancelled worker writes nothing after the driver set its copy aside
    assert not list(out.glob(".*.running.ipynb"))
    _ray_cpus_come_back()


def test_ctrl_c_cancels_outstanding_tasks(tmp_path, local_ray):
    def task(key):
        if key != "fast":
            time.sleep(600)
        return key

    def interrupt(outcome):
        raise KeyboardInterrupt

    calls = [(k, (k,), {}) for k in ("fast", "slow1", "slow2")]
    with pytest.raises(KeyboardInterrupt):
        distributed.run_tasks(task, calls, distributed.BackendOptions("ray"), progress=False, on_result=interrupt)
    _ray_cpus_come_back()  # cancelled tasks give their CPUs back (a 600 s sleep would hold them)


def test_ray_resources_and_the_one_options_value():
    from workbench.training import BackendOptions

    assert BackendOptions is distributed.BackendOptions  # one value, re-exported by the training API
    options = distributed.BackendOptions
    assert options().ray_resources(0) == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert options().ray_resources(2)["num_gpus"] == distributed.DEFAULT_GPU_FRACTION
    assert options(num_cpus=2, num_gpus=1).ray_resources(8) == {"num_cpus": 2.0, "num_gpus": 1.0}
    with pytest.raises(distributed.BackendOptionsError, match="has no GPUs"):
        options(num_gpus=0.5).ray_resources(0)


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[ray\]'"):
        distributed.import_ray()


def test_cli_backend_options():
    from workbench.cli import build_parser

    args = build_parser().parse_args(["train", "amh", "--backend", "ray", "--ray-address", "auto",
                                      "--max-retries", "0", "--gpus-per-task", "0.5"])
    assert (args.backend, args.ray_address, args.max_retries, args.gpus_per_task, args.cpus_per_task) == \
        ("ray", "auto", 0, 0.5, 1.0)
    assert build_parser().parse_args(["batch", "g.yaml", "--out", "o"]).backend == "local"
