"""Training-throughput benchmark behind ``workbench bench train``.

It times the real training path (:func:`workbench.training.run_crossval`: fold, feature
normalisation, :class:`~workbench.training.data.SERDataset`, the length-bucketed sampler,
collate, autocast on CUDA, a checkpoint every epoch, the test pass, the result tables) for
each model on an IEMOCAP-sized corpus whose **features are random arrays of the right
shapes**. Throughput depends on shapes, not values, so this measures any machine without the
corpus or the feature extractors: a GPU box needs only torch, numpy and pandas.

The stand-in corpus has IEMOCAP's 4-class size (5,531 utterances over 5 sessions, so a
leave-one-session-out training fold holds ~4,400) and, by default, **real IEMOCAP durations**:
those of the standard 4-class list shipped with the package
(``workbench/corpus/reference/iemocap4_standard.csv``; median 3.6 s, 90th percentile 8.7 s,
longest 34.1 s), each used once at the full size and resampled otherwise, with ~2.6 words per
second (``lengths="iemocap"``). ``lengths="lognormal"`` draws them from the log-normal set to
IEMOCAP's usual summary figures that benchmarks before 2026-12-07 used (median 3.5 s, clipped
to 0.6-35 s; its tail is lighter than the real one); a real manifest (``lengths_from``) lends
its own durations and word counts. Padding, memory and time per epoch follow the long tail,
so the IEMOCAP lengths are the ones to quote.

Each model trains with the named recipe (``paper``: its paper's optimiser, batch size, epochs
and protocol; ``demo``/``smoke``: the CPU recipes) with early stopping switched off, so the
paper row is the upper bound of a full paper training. ``bucketing`` runs it with and without
length-bucketed batches.

>>> m = stand_in_manifest(50, seed=0)
>>> len(m), len({u.session for u in m}) >= 1
(50, True)
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from workbench.corpus.manifest import Manifest, Utterance
from workbench.models.registry import list_models
from workbench.training.build import model_inputs_of
from workbench.training.crossval import run_crossval
from workbench.training.inputs import InputFeatures
from workbench.training.recipes import Recipe, get_recipe
from workbench.training.spec import CorpusOptions, RunSpec

# (dim, frame period in seconds; None = one row per word) of each extractor's output. A test
# checks these against the real extractors, which need librosa/openSMILE/MiniLM to construct.
# ``visual`` takes the built-in corpus's 32-d descriptors (a real corpus's HOG size differs).
FEATURE_SHAPES: dict[str, tuple[int, float | None]] = {
    "mfcc120": (120, 0.01), "mfcc40": (40, 0.01), "frame34": (34, 0.01), "prosody36": (18, 0.01),
    "spectrogram257": (257, 0.01),
    "waveform": (1, 1 / 16000), "text_contextual": (384, None), "text_static": (384, None), "visual": (32, 1 / 3),
    # a base-size speech encoder (wav2vec 2.0 / HuBERT / WavLM): 13 hidden states of 768 at 50 frames/s
    "ssl_layers": (13 * 768, 0.02),
}
#: Hidden states per frame of the extractors that concatenate encoder layers (1 for the others).
FEATURE_LAYERS = {"ssl_layers": 13}
IEMOCAP4_UTTERANCES = 5531  # ang 1103 + hap/exc 1636 + sad 1084 + neu 1708
CLASSES = ("neu", "hap", "ang", "sad")
BENCH_MODELS = tuple(list_models())


#: Where :func:`stand_in_manifest` takes utterance durations from (see the module docstring).
LENGTHS = ("iemocap", "lognormal")


def iemocap_durations() -> np.ndarray:
    """Durations in seconds of the 5,531 utterances of the standard 4-class IEMOCAP list
    (:func:`workbench.corpus.standard.load_standard`), in the list's order."""
    from workbench.corpus.standard import load_standard

    table = load_standard()
    return table.loc[table["label"].isin(CLASSES), "duration_s"].to_numpy(float)


def stand_in_manifest(n: int = IEMOCAP4_UTTERANCES, seed: int = 0,
                      lengths_from: Manifest | None = None, lengths: str = "iemocap") -> Manifest:
    """``n`` IEMOCAP-shaped utterances (5 sessions, 2 speakers each, 3 scripts, 4 classes)
    with durations, transcripts of ``w`` tokens and evenly spaced word timings.

    Durations and word counts are resampled from ``lengths_from`` when given; else durations
    come from ``lengths`` (:data:`LENGTHS`): ``"iemocap"`` the real ones (every one once, in a
    seeded order, when ``n`` is IEMOCAP's 5,531; resampled otherwise), ``"lognormal"`` the
    log-normal of the module docstring, with ~2.6 words per second.
    """
    if lengths not in LENGTHS:
        raise ValueError(f"lengths must be one of {LENGTHS}, got {lengths!r}")
    rng = np.random.default_rng(seed)
    if lengths_from is not None and len(lengths_from):
        src = [(u.duration, len(u.text.split())) for u in lengths_from]
        pick = rng.integers(len(src), size=n)
        durs = np.array([src[k][0] for k in pick], float)
        n_words = np.array([max(1, src[k][1]) for k in pick])
    else:
        if lengths == "iemocap":
            real = iemocap_durations()
            durs = rng.permutation(real) if n == len(real) else rng.choice(real, size=n)
        else:
            durs = np.clip(rng.lognormal(np.log(3.5), 0.62, n), 0.6, 35.0)
        n_words = np.maximum(1, np.round(durs * 2.6 + rng.normal(0, 1.5, n))).astype(int)
    labels = rng.choice(len(CLASSES), size=n, p=[0.31, 0.30, 0.20, 0.19])
    utts = []
    for k in range(n):
        session = f"Ses{k % 5 + 1:02d}"
        letter = "F" if (k // 5) % 2 == 0 else "M"
        d = (k // 10) % 8  # dialogs 0-2 scripted (script01..03), as ~40% of IEMOCAP is
        script = f"script{d + 1:02d}" if d < 3 else None
        dialog = f"{session}{letter}_{script}_1" if script else f"{session}{letter}_impro{d + 1:02d}"
        utt_id = f"{dialog}_{letter}{k:05d}"
        dur, w = float(durs[k]), int(n_words[k])
        step = dur / w
        words = [("W", i * step, (i + 1) * step) for i in range(w)]
        utts.append(Utterance(
            id=utt_id, corpus="bench", session=session, dialog=dialog, speaker=f"{session}{letter}", gender=letter,
            kind="scripted" if script else "improvised", script=script, audio_path="", start=0.0, duration=dur,
            text=" ".join(["w"] * w), label=CLASSES[labels[k]], words=words))
    return Manifest(utts)


def random_features(manifest: Manifest, recipe: Recipe, inputs: Sequence[str],
                    seed: int = 0) -> dict[str, InputFeatures]:
    """Random float32 features with the shapes the recipe's extractors would give ``manifest``
    (pooling and the waveform crop applied), as :func:`run_crossval` takes them."""
    rng = np.random.default_rng(seed)
    out: dict[str, InputFeatures] = {}
    for name in inputs:
        if name == "word_spans":
            continue
        spec = recipe.features[name]
        if spec.extractor not in FEATURE_SHAPES:
            raise ValueError(f"bench: no known output shape for extractor {spec.extractor!r}; "
                             f"known: {sorted(FEATURE_SHAPES)}")
        dim, period = FEATURE_SHAPES[spec.extractor]
        data: dict[str, np.ndarray] = {}
        for u in manifest:
            if period is None:
                steps = max(1, len(u.text.split()))
            else:
                seconds = min(u.duration, float(spec.config.get("max_seconds", math.inf)))
                steps = max(1, math.ceil(seconds / period / max(spec.pool, 1)))
            data[u.id] = rng.standard_normal((steps, dim), dtype=np.float32)
        fs = None if period is None else period * max(spec.pool, 1)
        out[name] = InputFeatures(spec, data, fs, dim * 2 if spec.deltas else dim, None,  # deltas: after normalising
                                  n_layers=FEATURE_LAYERS.get(spec.extractor, 1))
    return out


def bench_training(
    models: Sequence[str] = BENCH_MODELS,
    recipe: str = "paper",
    n_utterances: int = IEMOCAP4_UTTERANCES,
    epochs: int | None = None,
    bucketing: Sequence[bool] = (True, False),
    device: str = "auto",
    seed: int = 0,
    lengths_from: Manifest | None = None,
    batch_size: int | None = None,
    runs_root: str | Path | None = None,
    progress: bool = False,
    lengths: str = "iemocap",
) -> pd.DataFrame:
    """Train each of ``models`` once per ``bucketing`` setting on the first fold of its training
    ``recipe``'s protocol; one row per (model, bucketing) with wall times, throughput and GPU
    memory. Runs go to ``runs_root`` (default: a temporary folder, deleted after).

    ``epochs`` overrides the recipe's (None: the recipe's own, early stopping off), and
    ``batch_size`` the recipe's batch size (to see what a GPU-sized batch buys). Columns:
    ``train_seconds`` (the epochs only), ``wall_seconds`` (the whole cross-validation call:
    normalisation, datasets, training, test pass, tables), ``utts_per_second`` (training
    utterances per second of training), ``seconds_per_epoch``, ``peak_gpu_gib``, ``lengths``
    (where the utterance durations came from: ``lengths`` or ``manifest``).
    """
    manifest = stand_in_manifest(n_utterances, seed=seed, lengths_from=lengths_from, lengths=lengths)
    source = "manifest" if lengths_from is not None and len(lengths_from) else lengths
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        runs = Path(runs_root) if runs_root is not None else Path(tmp)
        for model in models:
            base = _bench_settings(model, recipe, epochs, batch_size)
            inputs = model_inputs_of(model, base)
            feats = random_features(manifest, base, inputs, seed=seed)
            for bucket in bucketing:
                settings = base.replace(bucketing=bool(bucket))
                if torch.cuda.is_available():
                    torch.cuda.reset_peak_memory_stats()
                t0 = time.perf_counter()
                spec = RunSpec.create(model, settings, folds=[0], device=device)
                r = run_crossval(spec, CorpusOptions("bench"), manifest=manifest, features=feats,
                                 runs_root=runs / f"{model}-{'bucket' if bucket else 'nobucket'}", progress=progress,
                                 rerun=True).iloc[0]
                wall = time.perf_counter() - t0
                peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
                rows.append(dict(model=model, recipe=recipe, lengths=source, bucketing=bool(bucket), protocol=r["protocol"],
                                 n_train=int(r["n_train"]), epochs=int(r["epochs_run"]),
                                 batch_size=settings.batch_size, train_seconds=float(r["train_seconds"]),
                                 seconds_per_epoch=float(r["train_seconds"]) / max(int(r["epochs_run"]), 1),
                                 wall_seconds=wall, utts_per_second=float(r["utts_per_second"]),
                                 peak_gpu_gib=peak, device=str(r["device"]), ua_random_features=float(r["ua"])))
    return pd.DataFrame(rows)


def _bench_settings(model: str, recipe: str, epochs: int | None, batch_size: int | None) -> Recipe:
    settings = get_recipe(model, recipe).replace(early_stopping_patience=None)
    if epochs is not None:
        settings = settings.replace(epochs=int(epochs))
    if batch_size is not None:
        settings = settings.replace(batch_size=int(batch_size))
    return settings


#: How long a worker of :func:`bench_concurrent` waits for the others to be ready.
BARRIER_SECONDS = 900.0


def bench_concurrent(
    model: str,
    concurrent: Sequence[int] = (1, 4, 8),
    recipe: str = "paper",
    n_utterances: int = IEMOCAP4_UTTERANCES,
    epochs: int | None = None,
    device: str = "auto",
    lengths: str = "iemocap",
    batch_size: int | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """Throughput of N trainings of ``model`` sharing this machine (and its GPU) at once, for
    each N of ``concurrent``: what ``--jobs N`` gets from one device (the paper models are small
    and latency-bound, so one training leaves a GPU mostly idle).

    Each of the N trainings (seeds 0..N-1 of the first fold, bucketed batches, early stopping
    off) runs in its own worker process with ``threads`` torch threads, as ``--jobs N`` runs
    them; every worker builds its stand-in corpus and random features itself (nothing large
    crosses a pipe), then waits for the others, so the N trainings start together. One row per
    N: ``utts_per_second_total`` (every training's utterances x epochs over the span from the
    first start to the last end), ``utts_per_second_each`` (mean of each training's own rate),
    ``seconds_per_epoch`` (mean), ``span_seconds``, ``speedup`` (total rate over N=1's, when
    N=1 is among ``concurrent``). ``tools/project_ledger.py --bench`` projects a ledger from it.
    """
    from workbench.distributed import BackendOptions, run_tasks

    bad = [n for n in concurrent if int(n) < 1]
    if bad or not concurrent:
        raise ValueError(f"concurrent must be trainings at once (>= 1), got {list(concurrent)}")
    rows = []
    for n in (int(n) for n in concurrent):
        with tempfile.TemporaryDirectory(prefix="wb-bench-concurrent-") as tmp:
            calls = [(str(i), (model, recipe, n_utterances, epochs, device, lengths, batch_size, i, n, tmp, threads), {})
                     for i in range(n)]
            outcomes = run_tasks(_concurrent_training, calls, BackendOptions(jobs=n, threads=threads), progress=False)
        failed = [o for o in outcomes if not o.ok]
        if failed:
            raise RuntimeError(f"bench_concurrent: {model} with {n} at once: {failed[0].error}")
        got = pd.DataFrame([o.value for o in outcomes])
        span = float(got["end"].max() - got["start"].min())
        utts = float((got["n_train"] * got["epochs"]).sum())
        rows.append(dict(model=model, recipe=recipe, lengths=lengths, concurrent=n, threads=threads,
                         n_train=int(got["n_train"].iloc[0]), epochs=int(got["epochs"].iloc[0]),
                         batch_size=int(got["batch_size"].iloc[0]), span_seconds=span,
                         utts_per_second_total=utts / span if span > 0 else float("nan"),
                         utts_per_second_each=float(got["utts_per_second"].mean()),
                         seconds_per_epoch=float((got["train_seconds"] / got["epochs"]).mean()),
                         device=str(got["device"].iloc[0])))
    frame = pd.DataFrame(rows)
    one = frame.loc[frame["concurrent"] == 1, "utts_per_second_total"]
    frame["speedup"] = frame["utts_per_second_total"] / float(one.iloc[0]) if len(one) else float("nan")
    return frame


def _concurrent_training(model: str, recipe: str, n_utterances: int, epochs: int | None, device: str, lengths: str,
                         batch_size: int | None, index: int, n: int, folder: str, threads: int) -> dict[str, Any]:
    """One training of :func:`bench_concurrent`, in a worker (in this process for N=1)."""
    from workbench.training.crossval import prepare_crossval, run_prepared

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        manifest = stand_in_manifest(n_utterances, seed=0, lengths=lengths)
        settings = _bench_settings(model, recipe, epochs, batch_size).replace(bucketing=True)
        feats = random_features(manifest, settings, model_inputs_of(model, settings), seed=0)
        spec = RunSpec.create(model, settings, folds=[0], seeds=[index], device=device)
        prepared = prepare_crossval(spec, CorpusOptions("bench"), runs_root=Path(folder) / f"w{index}",
                                    manifest=manifest, features=feats, rerun=True, progress=False)
        _barrier(Path(folder), index, n)
        start = time.time()  # wall clock: comparable across the workers of one machine
        r = run_prepared([prepared], progress=False)[0].iloc[0]
        end = time.time()
    finally:
        torch.set_num_threads(before)
    return dict(start=start, end=end, n_train=int(r["n_train"]), epochs=int(r["epochs_run"]),
                batch_size=settings.batch_size, train_seconds=float(r["train_seconds"]),
                utts_per_second=float(r["utts_per_second"]), device=str(r["device"]))


def _barrier(folder: Path, index: int, n: int) -> None:
    """Mark worker ``index`` ready in ``folder`` and wait until all ``n`` are."""
    (folder / f"ready-{index}").touch()
    deadline = time.monotonic() + BARRIER_SECONDS
    while len(list(folder.glob("ready-*"))) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench_concurrent: only {len(list(folder.glob('ready-*')))} of {n} trainings got "
                               f"ready within {BARRIER_SECONDS:.0f} s")
        time.sleep(0.05)


def concurrent_report(frame: pd.DataFrame) -> str:
    """A markdown table of :func:`bench_concurrent` rows: per model and N, the total rate."""
    lines = ["| model | N at once | threads | n_train | epochs | batch | utts/s total | utts/s each | s/epoch | "
             "speed-up | device |", "|" + "---|" * 11]
    for _, r in frame.iterrows():
        speed = "-" if pd.isna(r["speedup"]) else f"{r['speedup']:.2f}x"
        lines.append(f"| {r['model']} | {r['concurrent']} | {r['threads']} | {r['n_train']} | {r['epochs']} | "
                     f"{r['batch_size']} | {r['utts_per_second_total']:.0f} | {r['utts_per_second_each']:.0f} | "
                     f"{r['seconds_per_epoch']:.1f} | {speed} | {r['device']} |")
    return "\n".join(lines)


def report(frame: pd.DataFrame) -> str:
    """A markdown table: per model, throughput and time with and without bucketing."""
    lines = ["| model | protocol | n_train | epochs | batch | utts/s bucketed | utts/s unbucketed | speed-up | "
             "train s (bucketed) | wall s (bucketed) | peak GPU GiB |", "|" + "---|" * 11]
    for model, g in frame.groupby("model", sort=False):
        b = g[g.bucketing]
        u = g[~g.bucketing]
        rb = b.iloc[0] if len(b) else None
        ru = u.iloc[0] if len(u) else None
        ref = rb if rb is not None else ru
        speed = (rb.utts_per_second / ru.utts_per_second) if rb is not None and ru is not None else float("nan")

        def fmt(r: Any, col: str, spec: str = ".0f") -> str:
            return "-" if r is None or pd.isna(r[col]) else format(r[col], spec)

        speed_text = "-" if math.isnan(speed) else f"{speed:.2f}x"
        lines.append(f"| {model} | {ref.protocol} | {ref.n_train} | {ref.epochs} | {ref.batch_size} | "
                     f"{fmt(rb, 'utts_per_second')} | {fmt(ru, 'utts_per_second')} | {speed_text} | "
                     f"{fmt(rb, 'train_seconds', '.1f')} | {fmt(rb, 'wall_seconds', '.1f')} | "
                     f"{fmt(ref, 'peak_gpu_gib', '.2f')} |")
    return "\n".join(lines)


__all__ = ["BENCH_MODELS", "CLASSES", "FEATURE_SHAPES", "LENGTHS", "bench_concurrent", "bench_training", "concurrent_report", "iemocap_durations",
           "random_features", "report", "stand_in_manifest"]
