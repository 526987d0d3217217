"""Training-throughput benchmark behind ``workbench bench train``.

It times the real training path (:func:`workbench.training.run_crossval`: fold, feature
normalisation, :class:`~workbench.training.data.SERDataset`, the length-bucketed sampler,
collate, autocast on CUDA, a checkpoint every epoch, the test pass, the result tables) for
each model on an IEMOCAP-sized corpus whose **features are random arrays of the right
shapes**. Throughput depends on shapes, not values, so this measures any machine without the
corpus or the feature extractors: a GPU box needs only torch, numpy and pandas.

The stand-in corpus has IEMOCAP's 4-class size (5,531 utterances over 5 sessions, so a
leave-one-session-out training fold holds ~4,400) and log-normal durations set to IEMOCAP's
usual summary figures (median 3.5 s, clipped to 0.6-35 s; the mean comes out at 4.2 s against
the ~4.5 s usually quoted) with ~2.6 words per second. Pass a real manifest (``lengths_from``)
to take its durations and word counts instead.

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


def stand_in_manifest(n: int = IEMOCAP4_UTTERANCES, seed: int = 0,
                      lengths_from: Manifest | None = None) -> Manifest:
    """``n`` IEMOCAP-shaped utterances (5 sessions, 2 speakers each, 3 scripts, 4 classes)
    with durations, transcripts of ``w`` tokens and evenly spaced word timings.

    Durations and word counts are resampled from ``lengths_from`` when given, else drawn from
    the log-normal described in the module docstring.
    """
    rng = np.random.default_rng(seed)
    if lengths_from is not None and len(lengths_from):
        src = [(u.duration, len(u.text.split())) for u in lengths_from]
        pick = rng.integers(len(src), size=n)
        durs = np.array([src[k][0] for k in pick], float)
        n_words = np.array([max(1, src[k][1]) for k in pick])
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
) -> pd.DataFrame:
    """Train each of ``models`` once per ``bucketing`` setting on the first fold of its training
    ``recipe``'s protocol; one row per (model, bucketing) with wall times, throughput and GPU
    memory. Runs go to ``runs_root`` (default: a temporary folder, deleted after).

    ``epochs`` overrides the recipe's (None: the recipe's own, early stopping off), and
    ``batch_size`` the recipe's batch size (to see what a GPU-sized batch buys). Columns:
    ``train_seconds`` (the epochs only), ``wall_seconds`` (the whole cross-validation call:
    normalisation, datasets, training, test pass, tables), ``utts_per_second`` (training
    utterances per second of training), ``seconds_per_epoch``, ``peak_gpu_gib``.
    """
    manifest = stand_in_manifest(n_utterances, seed=seed, lengths_from=lengths_from)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        runs = Path(runs_root) if runs_root is not None else Path(tmp)
        for model in models:
            base = get_recipe(model, recipe).replace(early_stopping_patience=None)
            if epochs is not None:
                base = base.replace(epochs=int(epochs))
            if batch_size is not None:
                base = base.replace(batch_size=int(batch_size))
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
                rows.append(dict(model=model, recipe=recipe, bucketing=bool(bucket), protocol=r["protocol"],
                                 n_train=int(r["n_train"]), epochs=int(r["epochs_run"]),
                                 batch_size=settings.batch_size, train_seconds=float(r["train_seconds"]),
                                 seconds_per_epoch=float(r["train_seconds"]) / max(int(r["epochs_run"]), 1),
                                 wall_seconds=wall, utts_per_second=float(r["utts_per_second"]),
                                 peak_gpu_gib=peak, device=str(r["device"]), ua_random_features=float(r["ua"])))
    return pd.DataFrame(rows)


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


__all__ = ["BENCH_MODELS", "CLASSES", "FEATURE_SHAPES", "bench_training", "random_features", "report",
           "stand_in_manifest"]
