"""Cross-validation on Ray: each (fold, seed) :class:`~workbench.training.crossval.FoldJob` is
one task of :func:`workbench.distributed.run_tasks`, which knows nothing of training.

The manifest (and in-memory features) go to Ray's object store once for all tasks. Features
that :func:`~workbench.training.crossval.run_crossval` read from the feature cache are read
again from it by each worker instead (the cache must be on a filesystem every node sees, or
prepared on every node), once per worker process and run.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from workbench import paths
from workbench.distributed import BackendOptions, run_tasks
from workbench.training.inputs import InputFeatures, load_input_features

# Features loaded from the cache on a worker, kept for the next task of the same run: Ray
# reuses worker processes, and a corpus' features load in one read but not for free.
_FEATURES_MEMO: dict[str, Any] = {}


def _train_job(train: Callable[..., dict], job: Any, token: str, cache_inputs: Any, manifest: Any,
               features: Any) -> dict:
    """One (fold, seed) training on a worker. ``features`` is the in-memory mapping, or None:
    then they are read from the feature cache named by ``cache_inputs`` = (cache, inputs)."""
    if features is None:
        if token not in _FEATURES_MEMO:
            cache, inputs = cache_inputs
            _FEATURES_MEMO.clear()
            loaded = load_input_features(manifest, job.spec.settings, inputs, cache=cache, progress=False)
            _FEATURES_MEMO[token] = {k: v for k, v in loaded.items() if k in inputs}
        features = _FEATURES_MEMO[token]
    return train(job, manifest, features, progress=False)


def run_jobs_on_ray(train: Callable[..., dict], jobs: Sequence[Any], manifest: Any,
                    features: Mapping[str, InputFeatures], backend: BackendOptions,
                    cache_inputs: tuple[Any, Sequence[str]] | None = None, progress: bool = True) -> pd.DataFrame:
    """Run ``train(job, manifest, features, progress=False)`` (the caller's ``train_fold``) for
    every job as Ray tasks; the results rows in job order, without those of tasks that failed on
    their last attempt, which ``.attrs["failed"]`` lists as ``{"fold", "seed", "error"}``.

    With ``cache_inputs=(cache, inputs)`` workers read the features from that feature cache
    (None: the default cache as resolved here, since a worker's environment may name another);
    otherwise ``features`` travel through Ray's object store.
    """
    if cache_inputs is not None and cache_inputs[0] is None:
        from workbench.features.cache import FeatureCache

        cache_inputs = (FeatureCache(), cache_inputs[1])
    token = uuid.uuid4().hex
    calls = [(f"{job.fold.name}/s{job.seed}", (train, job, token, cache_inputs), {}) for job in jobs]
    outcomes = run_tasks(_train_job, calls, backend,
                         shared={"manifest": manifest, "features": None if cache_inputs else features},
                         env=paths.worker_env(), desc="trainings", progress=progress)
    frame = pd.DataFrame([o.value for o in outcomes if o.ok])
    frame.attrs["failed"] = [{"fold": job.fold.name, "seed": int(job.seed), "error": o.error}
                             for job, o in zip(jobs, outcomes) if not o.ok]
    return frame
