"""The Ray backend: run grid cells and (fold, seed) trainings as Ray tasks.

``workbench batch --backend ray`` and ``run_crossval(..., backend="ray")`` hand their work to
:func:`run_tasks`: one Ray task per notebook cell or per (fold, seed) training, each declaring
the resources it needs (``num_cpus``; ``num_gpus``, a fraction of a GPU by default when the
cluster has GPUs, so several small models train on one GPU at once). Ray schedules them over
every CPU and GPU of a multi-GPU machine or a cluster.

- ``ray_address=None`` starts a local Ray instance for the run and shuts it down afterwards;
  an address (``"auto"``, ``"ray://head:10001"``, ``"10.0.0.5:6379"``) connects to an existing
  cluster, which is left running. If Ray is already initialised in this process (a notebook
  that called ``ray.init``), that session is used and left alone.
- A task that raises (or whose worker dies) is retried ``max_retries`` times by Ray itself
  (``retry_exceptions=True``), then reported as failed; the other tasks go on.
- Ctrl-C cancels every outstanding task (``ray.cancel(force=True)``), waits up to
  :data:`CANCEL_WAIT_SECONDS` for them to end, shuts down a cluster this call started, then
  re-raises ``KeyboardInterrupt``. For a batch, :func:`workbench.batch.run_grid` then renames
  the cancelled cells' executing copies to ``<name>.INTERRUPTED.ipynb`` and raises
  ``BatchInterrupted`` like the local backend; cell names are checked on the driver before any
  task starts and again by :func:`run_cell_task` (nothing is written outside ``--out``).
- Workers write results themselves, through the same locked, atomic, keyed-by-``run_id``
  table writes as the local backend, so a retried task replaces its rows, never duplicates
  them. Run directories, the results table, the corpus and the feature cache must therefore
  be on a filesystem every node sees at the same path (see the README).

Ray is optional: ``pip install -e '.[ray]'``. Nothing here imports it until a run asks for it.
"""

from __future__ import annotations

import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

RAY_MISSING = "the 'ray' backend needs Ray, an optional extra: pip install -e '.[ray]' (or pip install 'ray>=2.9')"

#: How long Ctrl-C waits for cancelled tasks to end before re-raising.
CANCEL_WAIT_SECONDS = 10.0

#: GPU share of one training task when the cluster has GPUs and none was asked for: the paper
#: models are a few million parameters, so four trainings share one GPU without running short
#: of memory and keep it far busier than one at a time.
DEFAULT_GPU_FRACTION = 0.25


def import_ray() -> Any:
    """Import Ray with usage reporting off (nothing may reach the internet); a clear
    :class:`ImportError` naming the extra when it is not installed."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as e:
        raise ImportError(RAY_MISSING) from e
    return ray


@dataclass(frozen=True)
class TaskResources:
    """What each task asks Ray for.

    ``num_gpus=None`` means: :data:`DEFAULT_GPU_FRACTION` of a GPU when the cluster has GPUs,
    none otherwise. A fraction below 1 packs several tasks on one GPU; Ray sets
    ``CUDA_VISIBLE_DEVICES`` in each worker to the GPU it assigned.
    """

    num_cpus: float = 1.0
    num_gpus: float | None = None

    def resolve(self, cluster_gpus: float) -> dict[str, float]:
        if self.num_cpus < 0 or (self.num_gpus is not None and self.num_gpus < 0):
            raise ValueError(f"task resources must be >= 0, got num_cpus={self.num_cpus}, num_gpus={self.num_gpus}")
        if self.num_gpus is None:
            gpus = DEFAULT_GPU_FRACTION if cluster_gpus > 0 else 0.0
        else:
            gpus = float(self.num_gpus)
        if gpus > 0 and cluster_gpus <= 0:
            raise ValueError(f"tasks ask for num_gpus={gpus} but the Ray cluster has no GPUs; pass num_gpus=0")
        return {"num_cpus": float(self.num_cpus), "num_gpus": gpus}


@dataclass
class TaskOutcome:
    """The end of one task: ``value`` when ``ok``, else ``error`` (the last attempt's)."""

    key: str
    ok: bool
    value: Any = None
    error: str = ""
    seconds: float = 0.0  # wall time of the successful attempt, on the worker
    cause: BaseException | None = None  # the last attempt's exception, when it could be rebuilt here


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Yield the ``ray`` module, initialised.

    Connects to ``address`` when given, else starts a local instance (``num_cpus``: all cores
    by default). Shuts down / disconnects on exit only what this call initialised.
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        # Worker output would interleave with the progress bar; errors come back in outcomes,
        # full worker logs stay in Ray's session log folder.
        common = {"log_to_driver": False, "configure_logging": False}
        if address:
            # Workers on other nodes resolve the workbench's data/cache/runs folders from their
            # own environment; hand them the driver's, which must name shared paths anyway.
            from workbench import paths

            env = {"WORKBENCH_DATA": str(paths.data_dir()), "WORKBENCH_CACHE": str(paths.cache_dir()),
                   "WORKBENCH_RUNS": str(paths.runs_dir()), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            ray.init(address=address, runtime_env={"env_vars": env}, **common)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **common)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _timed(fn: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - t0


def _error_text(err: BaseException, attempts: int) -> str:
    # RayTaskError wraps the task's exception (with a remote traceback) in .cause
    cause = getattr(err, "cause", None) or err
    lines = str(cause).strip().splitlines()
    text = lines[0] if lines else ""
    if not isinstance(cause, CellFailed):  # a cell's error already names its exception type
        text = f"{type(cause).__name__}: {text}" if text else type(cause).__name__
    return f"{text[:300]} ({attempts} attempt{'s' if attempts > 1 else ''})"


def run_tasks(
    fn: Callable[..., Any],
    calls: Sequence[tuple[str, tuple, Mapping[str, Any]]],
    *,
    shared: Mapping[str, Any] | None = None,
    resources: TaskResources = TaskResources(),
    max_retries: int = 2,
    ray_address: str | None = None,
    desc: str = "tasks",
    progress: bool = True,
    on_result: Callable[[TaskOutcome], None] | None = None,
) -> list[TaskOutcome]:
    """Run ``fn(*args, **kwargs, **shared)`` for every ``(key, args, kwargs)`` of ``calls`` as
    Ray tasks; return one :class:`TaskOutcome` per call, in the order of ``calls``.

    ``shared`` values (a manifest, features) are put in Ray's object store once and given to
    every task. ``on_result`` is called in this process as each task finishes (completion
    order), e.g. to record progress state. A task is tried at most ``1 + max_retries`` times.
    """
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    keys = [c[0] for c in calls]
    if len(set(keys)) != len(keys):
        raise ValueError("run_tasks: task keys must be unique")
    outcomes: dict[str, TaskOutcome] = {}
    if not calls:
        return []
    from tqdm.auto import tqdm

    with ray_session(ray_address) as ray:
        opts = resources.resolve(ray.cluster_resources().get("GPU", 0.0))
        remote = ray.remote(_timed).options(max_retries=max_retries, retry_exceptions=True, **opts)
        shared_refs = {k: ray.put(v) for k, v in (shared or {}).items()}
        # Top-level ObjectRef arguments are resolved by Ray before the task runs; nested ones
        # are not, so the shared refs travel as a dict and are fetched on the worker.
        pending = {remote.remote(_with_shared, (fn, args, dict(kwargs), shared_refs), {}): key
                   for key, args, kwargs in calls}
        bar = tqdm(total=len(calls), desc=desc, unit="task", disable=not progress)
        try:
            while pending:
                # A short timeout rather than one long wait: Python runs its SIGINT handler
                # (Ctrl-C) between calls, so an interrupt is acted on within half a second.
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in done:
                    key = pending.pop(ref)
                    try:
                        value, seconds = ray.get(ref)
                        out = TaskOutcome(key, True, value, "", seconds)
                    except KeyboardInterrupt:
                        raise
                    except Exception as e:  # the task failed on its last attempt
                        cause = getattr(e, "cause", None) or e
                        out = TaskOutcome(key, False, None, _error_text(e, 1 + max_retries), cause=cause)
                    outcomes[key] = out
                    bar.update(1)
                    if not out.ok:
                        bar.set_postfix(failed=sum(not o.ok for o in outcomes.values()))
                    if on_result is not None:
                        on_result(out)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            # Cancelling is asynchronous; wait (briefly) until the workers are gone, since the
            # caller cleans up after them (a batch renames their executing copies) and a dying
            # worker could otherwise still write one again.
            if pending:
                ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_WAIT_SECONDS)
            bar.write(f"interrupted: cancelled {len(pending)} outstanding task(s)")
            raise
        finally:
            bar.close()
    return [outcomes[k] for k in keys]


def _with_shared(fn: Callable[..., Any], args: tuple, kwargs: dict, shared_refs: Mapping[str, Any]) -> Any:
    if shared_refs:
        import ray

        kwargs = {**kwargs, **dict(zip(shared_refs, ray.get(list(shared_refs.values()))))}
    return fn(*args, **kwargs)


# --------------------------------------------------------------------------- batch cells
class CellFailed(RuntimeError):
    """A notebook cell failed; raised inside the Ray task so that Ray retries it. Carries the
    :class:`workbench.batch.CellResult` of the attempt."""

    def __init__(self, result: Any):
        super().__init__(result)
        self.result = result

    def __str__(self) -> str:
        return getattr(self.result, "error", "") or "notebook failed"


def run_cell_task(cell: Any, out_dir: Any, kernel: str, batch_id: str | None = None) -> Any:
    """:func:`workbench.batch.run_cell` that raises on a failed notebook (to be retried); a cell
    rejected before running (bad parameters) is returned as failed: retrying cannot help.

    ``run_cell`` refuses a cell whose files would leave ``out_dir`` and, on an interrupt
    (a cancel without ``force``), sets its executing copy aside; ``batch_id`` tags that copy
    so the driver can set it aside too when a forced cancel killed the worker."""
    from workbench.batch import run_cell

    result = run_cell(cell, out_dir, kernel, batch_id=batch_id)
    if result.status != "ok" and not getattr(cell, "problems", ()):
        raise CellFailed(result)
    return result


# --------------------------------------------------------------------------- cross-validation
# Features loaded from the cache on a worker, kept for the next task of the same run: Ray
# reuses worker processes, and a corpus' features load in one read but not for free.
_FEATURES_MEMO: dict[str, Any] = {}


def _crossval_task(run_one: Callable[..., dict], fold: Any, seed: int, token: str, cache_source: Any,
                   kwargs: Mapping[str, Any], manifest: Any, features: Any) -> dict:
    """One (fold, seed) training on a worker. ``features`` is the in-memory mapping, or None:
    then they are read from the feature cache named by ``cache_source`` = (cache, inputs)."""
    if features is None:
        if token not in _FEATURES_MEMO:
            from workbench.training.crossval import load_input_features

            cache, inputs = cache_source
            _FEATURES_MEMO.clear()
            loaded = load_input_features(manifest, kwargs["settings"], inputs, cache=cache, progress=False)
            _FEATURES_MEMO[token] = {k: v for k, v in loaded.items() if k in inputs}
        features = _FEATURES_MEMO[token]
    return run_one(**kwargs, manifest=manifest, features=features, fold=fold, seed=seed, progress=False)


def crossval_on_ray(
    run_one: Callable[..., dict],
    jobs: Sequence[tuple[Any, int]],
    common: Mapping[str, Any],
    manifest: Any,
    features: Any,
    cache_source: tuple[Any, Sequence[str]] | None,
    *,
    resources: TaskResources = TaskResources(),
    max_retries: int = 2,
    ray_address: str | None = None,
    progress: bool = True,
) -> tuple[list[dict], list[dict]]:
    """Run ``run_one(**common, fold=, seed=, manifest=, features=)`` for every (fold, seed) of
    ``jobs`` as Ray tasks (used by :func:`workbench.training.crossval.run_crossval`).

    With ``cache_source=(cache, inputs)`` workers read the features from that feature cache
    (which must be on a shared filesystem or prepared on every node); otherwise ``features``
    travel through Ray's object store. Returns ``(rows in job order, failures)`` where each
    failure is ``{"fold", "seed", "error"}``.
    """
    token = uuid.uuid4().hex
    calls = [(f"{fold.name}/s{seed}", (run_one, fold, int(seed), token, cache_source, dict(common)), {})
             for fold, seed in jobs]
    outcomes = run_tasks(_crossval_task, calls,
                         shared={"manifest": manifest, "features": None if cache_source else features},
                         resources=resources, max_retries=max_retries, ray_address=ray_address,
                         desc="trainings", progress=progress)
    rows = [o.value for o in outcomes if o.ok]
    failures = [{"fold": fold.name, "seed": int(seed), "error": o.error}
                for (fold, seed), o in zip(jobs, outcomes) if not o.ok]
    return rows, failures


__all__ = ["DEFAULT_GPU_FRACTION", "RAY_MISSING", "TaskOutcome", "TaskResources", "crossval_on_ray", "import_ray",
           "ray_session", "run_cell_task", "run_tasks"]
