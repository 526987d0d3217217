"""Run one function over many calls, here or on Ray, and say how each call ended.

::

    outcomes = run_tasks(fn, [(key, args, kwargs), ...], BackendOptions(jobs=4))

Where the calls run is one value, :class:`BackendOptions` (the training, batch and CLI layers
pass it through unchanged; its checks live here, once). Every backend returns the same thing: one :class:`TaskOutcome` per call, in the order of the
calls, whatever happened to the others. A call that raises is an outcome with ``ok=False``, the
error as one line (``"ValueError: bad input (1 attempt)"``) and the exception in ``cause``; the
other calls go on. A call may ``raise TaskFailed(message, value)`` to fail with exactly that
message and hand ``value`` (a partial result) back in the outcome.

Backends:

- ``backend="local", jobs=1``: one call after another in this process (``threads`` unused: the
  process keeps its own).
- ``backend="local", jobs=N``: N worker processes (spawned, so ``fn`` and the arguments must
  pickle: a module-level function), ``threads`` torch/OpenMP threads each (N trainings on N
  cores must not each start one thread per core). Not threads: a call may change process-wide
  state (papermill changes the working directory). A worker that dies (killed, ``os._exit``)
  breaks the whole pool: the calls not finished by then are reported failed with that error.
- ``backend="ray"``: one Ray task per call, each asking for ``num_cpus`` and ``num_gpus``
  (``jobs`` is not used: Ray runs as many at once as the cluster's CPUs and GPUs allow). ``ray_address=None``
  starts a local Ray instance for the run and shuts it down afterwards; an address (``"auto"``,
  ``"ray://head:10001"``) connects to a running cluster, which is left running. If Ray is already
  initialised in this process (a notebook called ``ray.init``), that session is used as it is.

Retries (``max_retries``) are the Ray backend's: a call that raises, or whose worker dies, is
run again by Ray, at most ``1 + max_retries`` times in all, then reported. Locally each call runs
once: on the same machine with the same code a failure nearly always repeats, whereas the
failures retries are for (a lost node, a pre-empted machine, a worker killed to free memory)
are a cluster's.

``env`` names environment variables every Ray task is given (its ``runtime_env``): workers on
other nodes do not inherit this process's environment. Local workers do, so it is not needed
there. This module imports nothing from the workbench: what a task needs from the library, its
caller hands over.

Ctrl-C: locally the worker processes ignore it (it reaches the whole process group) and are
terminated at once, queued calls are dropped; on Ray every outstanding task is cancelled
(``ray.cancel(force=True)``) and waited for up to :data:`CANCEL_WAIT_SECONDS`. Either way the
workers are gone when ``KeyboardInterrupt`` is re-raised, so the caller may clean up after them.

Ray is optional (``pip install -e '.[ray]'``); nothing here imports it until a run asks for it.
"""

from __future__ import annotations

import multiprocessing
import operator
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence

RAY_MISSING = "the 'ray' backend needs Ray, an optional extra: pip install -e '.[ray]' (or pip install 'ray>=2.9')"

#: How long Ctrl-C waits for cancelled Ray tasks (or terminated local workers) to end.
CANCEL_WAIT_SECONDS = 10.0

#: GPU share of one task when the Ray cluster has GPUs and none was asked for: the paper models
#: are a few million parameters, so four trainings share one GPU without running short of memory
#: and keep it far busier than one at a time.
DEFAULT_GPU_FRACTION = 0.25

#: One call: ``(key, args, kwargs)``; keys are unique and name the call in its outcome.
Call = tuple[str, tuple, Mapping[str, Any]]
Backend = Literal["local", "ray"]

#: Environment variables a local worker sets to its ``threads`` before anything imports torch
#: or numpy (spawned workers start bare, so this is in time), inherited by what it starts
#: (a notebook's kernel).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class BackendOptionsError(ValueError):
    """A backend option out of range: a user's fix, printed by the ``workbench`` command as one
    line naming the option (this leaf module imports nothing of workbench, hence no
    WorkbenchError base)."""


class RayMissingError(ImportError):
    """The ``ray`` backend was asked for where Ray is not installed: a user's fix (the extra),
    so the ``workbench`` command prints it as one line (this leaf module imports nothing of
    workbench, hence no WorkbenchError base)."""


def import_ray() -> Any:
    """Import Ray with usage reporting off (nothing may reach the internet); a
    :class:`RayMissingError` (an ImportError) naming the extra when it is not installed."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as e:
        raise RayMissingError(RAY_MISSING) from e
    return ray


def require_ray() -> None:
    """:class:`RayMissingError` unless Ray can be imported: checked before a batch or a
    training writes anything (a failed start once left an empty run folder with a lock file)."""
    import importlib.util

    if "ray" in sys.modules and sys.modules["ray"] is None or importlib.util.find_spec("ray") is None:
        raise RayMissingError(RAY_MISSING)


def _whole(value: Any) -> bool:
    """An int (numpy's too, as a notebook parameter may be), not a bool or a float."""
    try:
        operator.index(value)
    except TypeError:
        return False
    return not isinstance(value, bool)


@dataclass(frozen=True)
class BackendOptions:
    """Where the calls of :func:`run_tasks` execute; every option is checked when the value is
    made, so a bad one fails before anything starts.

    - ``backend``: ``"local"`` (this machine) or ``"ray"``.
    - ``jobs``, ``threads`` (local): calls at once, each in its own worker process with
      ``threads`` torch threads; ``jobs=1`` runs them one after another in this process.
      docs/performance.md says how to choose them.
    - ``max_retries``, ``ray_address``, ``num_cpus``, ``num_gpus`` (Ray): retries of a failed
      task; the cluster (None starts a local Ray instance); what each task asks for.
      ``num_gpus=None`` means :data:`DEFAULT_GPU_FRACTION` of a GPU when the cluster has GPUs,
      none otherwise; a fraction below 1 packs several tasks on one GPU (Ray sets
      ``CUDA_VISIBLE_DEVICES`` in each worker to the GPU it assigned).
    """

    backend: Backend = "local"
    ray_address: str | None = None
    max_retries: int = 2
    num_cpus: float = 1.0
    num_gpus: float | None = None
    jobs: int = 1
    threads: int = 1

    def __post_init__(self) -> None:
        if self.backend not in ("local", "ray"):
            raise BackendOptionsError(f"backend must be 'local' or 'ray', got {self.backend!r}")
        for name, least in (("jobs", 1), ("threads", 1), ("max_retries", 0)):
            value = getattr(self, name)
            if not _whole(value) or value < least:
                raise BackendOptionsError(f"{name} must be a whole number >= {least}, got {value!r}")
        if not self.num_cpus >= 0 or (self.num_gpus is not None and not self.num_gpus >= 0):
            raise BackendOptionsError(f"task resources must be >= 0, got num_cpus={self.num_cpus}, "
                                      f"num_gpus={self.num_gpus}")

    def require(self) -> None:
        """:class:`RayMissingError` when the backend is Ray and Ray is not installed: callers
        run it before they load or write anything."""
        if self.backend == "ray":
            require_ray()

    def ray_resources(self, cluster_gpus: float) -> dict[str, float]:
        """``num_cpus`` and ``num_gpus`` of each Ray task on a cluster with ``cluster_gpus``."""
        gpus = (DEFAULT_GPU_FRACTION if cluster_gpus > 0 else 0.0) if self.num_gpus is None else float(self.num_gpus)
        if gpus > 0 and cluster_gpus <= 0:
            raise BackendOptionsError(f"tasks ask for num_gpus={gpus} but the Ray cluster has no GPUs; pass num_gpus=0")
        return {"num_cpus": float(self.num_cpus), "num_gpus": gpus}


@dataclass
class TaskOutcome:
    """The end of one call: ``value`` when ``ok``; else ``error`` (the last attempt's, one line)
    and ``value`` the :class:`TaskFailed` payload, if the call raised one."""

    key: str
    ok: bool
    value: Any = None
    error: str = ""
    seconds: float = 0.0  # wall time of the successful attempt, on the worker
    cause: BaseException | None = None  # the last attempt's exception, when it could be rebuilt here


class TaskFailed(Exception):
    """Raised by a call to fail with exactly ``message`` (no exception type is prefixed) and
    hand ``value`` back in its :class:`TaskOutcome`. On Ray it is retried like any error."""

    def __init__(self, message: str, value: Any = None):
        super().__init__(message, value)
        self.message, self.value = message, value

    def __str__(self) -> str:
        return self.message


def run_tasks(
    fn: Callable[..., Any],
    calls: Sequence[Call],
    options: BackendOptions = BackendOptions(),
    *,
    shared: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    desc: str = "tasks",
    progress: bool = True,
    on_result: Callable[[TaskOutcome], None] | None = None,
) -> list[TaskOutcome]:
    """Run ``fn(*args, **kwargs, **shared)`` for every ``(key, args, kwargs)`` of ``calls``;
    return one :class:`TaskOutcome` per call, in the order of ``calls`` (see the module
    docstring for the backends, retries and Ctrl-C).

    ``shared`` values (a manifest, features) are sent to each worker once, not with every call.
    ``on_result`` is called in this process as each call ends (in the order they end), e.g. to
    record progress; an exception it raises stops the run like Ctrl-C does.
    """
    options.require()
    keys = [c[0] for c in calls]
    if len(set(keys)) != len(keys):
        raise ValueError("run_tasks: task keys must be unique")
    if not calls:
        return []
    from tqdm.auto import tqdm

    outcomes: dict[str, TaskOutcome] = {}
    bar = tqdm(total=len(calls), desc=desc, unit="task", disable=not progress)

    def finished(out: TaskOutcome) -> None:
        outcomes[out.key] = out
        bar.update(1)
        if not out.ok:
            bar.set_postfix(failed=sum(not o.ok for o in outcomes.values()))
        if on_result is not None:
            on_result(out)

    try:
        if options.backend == "ray":
            _run_on_ray(fn, calls, dict(shared or {}), options, env, finished, bar)
        elif options.jobs == 1:
            for key, args, kwargs in calls:
                finished(_outcome(key, _attempt, (fn, args, {**kwargs, **(shared or {})}), 1))
        else:
            _run_in_processes(fn, calls, dict(shared or {}), options, finished, bar)
    finally:
        bar.close()
    return [outcomes[k] for k in keys]


def _attempt(fn: Callable[..., Any], args: tuple, kwargs: Mapping[str, Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - t0


def _outcome(key: str, get: Callable[..., tuple[Any, float]], get_args: tuple, attempts: int) -> TaskOutcome:
    """The outcome of ``get(*get_args)``, which returns ``(value, seconds)`` or raises the
    call's (last) error; ``KeyboardInterrupt`` passes through."""
    try:
        value, seconds = get(*get_args)
        return TaskOutcome(key, True, value, "", seconds)
    except Exception as e:
        cause = getattr(e, "cause", None)  # a RayTaskError carries the task's exception in .cause
        cause = cause if isinstance(cause, BaseException) else e
        payload = cause.value if isinstance(cause, TaskFailed) else None
        return TaskOutcome(key, False, payload, _error_text(cause, attempts), cause=cause)


def _error_text(cause: BaseException, attempts: int) -> str:
    lines = str(cause).strip().splitlines()
    text = lines[0] if lines else ""
    if not isinstance(cause, TaskFailed):
        text = f"{type(cause).__name__}: {text}" if text else type(cause).__name__
    return f"{text[:300]} ({attempts} attempt{'s' if attempts > 1 else ''})"


# --------------------------------------------------------------------------- local processes
_WORKER_SHARED: dict[str, Any] = {}  # a pool worker's copy of ``shared``, sent once when it starts


def _start_worker(shared: Mapping[str, Any], threads: int) -> None:
    # Ctrl-C reaches every process of the terminal's group; the parent alone decides what
    # happens (it stops the workers, and its caller cleans up after them), so workers ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    _WORKER_SHARED.update(shared)


def _die_with_parent() -> None:
    """Linux: have the kernel stop this worker when the parent dies (killed with -9, or by a
    timeout), which would otherwise leave it training for minutes with nobody to collect it."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no libc prctl: the worker just outlives a killed parent
        return
    if os.getppid() == 1:  # the parent died before the call
        os._exit(1)


def _attempt_in_worker(fn: Callable[..., Any], args: tuple, kwargs: Mapping[str, Any],
                       threads: int) -> tuple[Any, float]:
    # torch caps a count read from the environment at the cores; set it exactly once the
    # call's module has imported torch (unpickling ``fn`` did)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return _attempt(fn, args, {**kwargs, **_WORKER_SHARED})


def _run_in_processes(fn: Callable[..., Any], calls: Sequence[Call], shared: dict[str, Any], options: BackendOptions,
                      finished: Callable[[TaskOutcome], None], bar: Any) -> None:
    pool = ProcessPoolExecutor(max_workers=options.jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(shared, options.threads))
    try:
        pending: dict[Future, str] = {pool.submit(_attempt_in_worker, fn, args, dict(kwargs), options.threads): key
                                      for key, args, kwargs in calls}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                finished(_outcome(pending.pop(fut), Future.result, (fut,), 1))
    except BaseException:
        n = _stop_pool(pool)
        bar.write(f"stopped: {n} worker process(es) terminated, queued tasks dropped")
        raise
    pool.shutdown()


def _stop_pool(pool: ProcessPoolExecutor) -> int:
    """Drop the queued calls and stop the workers now (a call can run for hours); the number
    of workers stopped."""
    # ``_processes`` is private, but the only handle on the workers before Python 3.14's
    # terminate_workers(); without it shutdown() would wait for every running call.
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.terminate()
    for p in procs:
        p.join(timeout=CANCEL_WAIT_SECONDS)  # before the caller cleans up: a dying worker writes no more
    return len(procs)


# --------------------------------------------------------------------------- Ray
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
            ray.init(address=address, **common)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **common)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _run_on_ray(fn: Callable[..., Any], calls: Sequence[Call], shared: dict[str, Any], options: BackendOptions,
                env: Mapping[str, str] | None, finished: Callable[[TaskOutcome], None], bar: Any) -> None:
    max_retries = options.max_retries
    with ray_session(options.ray_address) as ray:
        opts: dict[str, Any] = dict(options.ray_resources(ray.cluster_resources().get("GPU", 0.0)))
        if env:
            opts["runtime_env"] = {"env_vars": dict(env)}
        remote = ray.remote(_attempt).options(max_retries=max_retries, retry_exceptions=True, **opts)
        shared_refs = {k: ray.put(v) for k, v in shared.items()}
        # Top-level ObjectRef arguments are resolved by Ray before the task runs; nested ones
        # are not, so the shared refs travel as a dict and are fetched on the worker.
        pending = {remote.remote(_with_shared, (fn, args, dict(kwargs), shared_refs), {}): key
                   for key, args, kwargs in calls}
        try:
            while pending:
                # A short timeout rather than one long wait: Python runs its SIGINT handler
                # (Ctrl-C) between calls, so an interrupt is acted on within half a second.
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in done:
                    finished(_outcome(pending.pop(ref), ray.get, (ref,), 1 + max_retries))
        except BaseException:
            _cancel(ray, list(pending))
            bar.write(f"stopped: cancelled {len(pending)} outstanding task(s)")
            raise


def _cancel(ray: Any, refs: list[Any]) -> None:
    """Force-cancel ``refs`` and wait (at most :data:`CANCEL_WAIT_SECONDS`) until they end.

    Cancelling is asynchronous, and a task that was being handed to a worker at that moment
    can miss its cancel and run on (seen: a 600 s task kept its CPU), so the cancel is repeated
    until every task has ended. Waiting matters too: the caller cleans up after the tasks (a
    batch renames their executing copies) and a dying worker could otherwise still write one.
    """
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    while refs and time.monotonic() < deadline:
        for ref in refs:
            ray.cancel(ref, force=True)
        _, refs = ray.wait(refs, num_returns=len(refs), timeout=0.5)


def _with_shared(fn: Callable[..., Any], args: tuple, kwargs: dict, shared_refs: Mapping[str, Any]) -> Any:
    if shared_refs:
        import ray

        kwargs = {**kwargs, **dict(zip(shared_refs, ray.get(list(shared_refs.values()))))}
    return fn(*args, **kwargs)


__all__ = ["CANCEL_WAIT_SECONDS", "DEFAULT_GPU_FRACTION", "RAY_MISSING", "THREAD_VARIABLES", "BackendOptions",
           "BackendOptionsError", "Call", "TaskFailed", "TaskOutcome", "RayMissingError", "import_ray", "require_ray",
           "ray_session", "run_tasks"]
