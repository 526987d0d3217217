"""Measure the ``ssl_layers`` extractor and train the SSL baselines end to end (docs/ssl.md).

Three parts, each printing one JSON line per measurement:

``speed``   seconds of audio encoded per second of wall time, for the tiny test checkpoint and
            the base-size wav2vec 2.0 (random weights, built from its config; all 13 hidden
            states, and hidden states 0 and 4 only), on in-memory clips (no file reading),
            after one warm-up call;
``memory``  peak resident memory of encoding one 60-second utterance, chunked (20 s chunks,
            1 s context) and in one pass: each run in a fresh process; the number reported is
            the growth of ``ru_maxrss`` (Linux: KiB, the process's high-water mark) from after
            loading the model and encoding a 1-second clip to after the 60-second one;
``train``   ssl_baseline and ssl_fusion with the demo recipe on the demo synthetic corpus, on
            the base-size random wav2vec 2.0 with a layer subset; UA, wall time and feature
            store size.

    python tools/bench_ssl.py speed --device cpu
    python tools/bench_ssl.py memory
    python tools/bench_ssl.py train --layers 0,4,8,12 --folds 0,1 [--corpus-size smoke] [--kind tiny] [--subset 0.25]

Checkpoints are written under ``--work`` (default ``/tmp/ssl_bench``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _checkpoint(work: Path, kind: str) -> Path:
    from workbench.testing.ssl_checkpoints import random_base_speech_model, tiny_speech_model

    path = work / f"{kind}-wav2vec2"
    if not (path / "config.json").is_file():
        (tiny_speech_model if kind == "tiny" else random_base_speech_model)(path)
    return path


def _clips(seconds: float, n: int, sr: int = 16000, seed: int = 0) -> list[np.ndarray]:
    """``n`` clips of noise and tones, ``seconds`` long each."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return [(0.1 * np.sin(2 * np.pi * rng.uniform(100, 400) * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
            for _ in range(n)]


def speed(args: argparse.Namespace) -> None:
    import torch

    from workbench.features import get_extractor

    # the last case stores hidden states 0 and 4 only: transformer layers 5-12 are not run
    for kind, layers in (("tiny", None), ("base", None), ("base", [0, 4])):
        ext = get_extractor("ssl_layers", checkpoint=str(_checkpoint(args.work, kind)), device=args.device, layers=layers)
        clips = _clips(args.clip_seconds, args.clips)
        ext.compute(clips[:1])  # warm-up: loading, first-call allocations
        t0 = time.perf_counter()
        out = ext.compute(clips)
        wall = time.perf_counter() - t0
        audio = args.clip_seconds * len(clips)
        print(json.dumps({"measure": "speed", "checkpoint": kind, "layers": list(ext.layers), "device": args.device,
                          "threads": torch.get_num_threads(),
                          "audio_s": audio, "wall_s": round(wall, 3), "audio_s_per_s": round(audio / wall, 2),
                          "frames": int(sum(len(o) for o in out)), "dim": ext.dim}), flush=True)


def _memory_child(args: argparse.Namespace) -> None:
    from workbench.features import get_extractor

    chunk = 20.0 if args.chunked else 1000.0
    ext = get_extractor("ssl_layers", checkpoint=str(_checkpoint(args.work, args.kind)), device="cpu",
                        chunk_seconds=chunk, chunk_context_seconds=1.0)
    ext.compute(_clips(1.0, 1))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    y = _clips(60.0, 1)
    t0 = time.perf_counter()
    out = ext.compute(y)[0]
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"measure": "memory", "checkpoint": args.kind, "chunked": bool(args.chunked),
                      "maxrss_before_mib": round(before / 1024, 1), "maxrss_after_mib": round(after / 1024, 1),
                      "peak_growth_mib": round((after - before) / 1024, 1), "output_mib": round(out.nbytes / 2**20, 1),
                      "wall_s": round(wall, 2), "frames": len(out)}), flush=True)


def memory(args: argparse.Namespace) -> None:
    for kind in args.kinds.split(","):
        for chunked in (1, 0):
            cmd = [sys.executable, __file__, "memory-child", "--work", str(args.work), "--kind", kind, "--chunked", str(chunked)]
            subprocess.run(cmd, check=True)


def train(args: argparse.Namespace) -> None:
    import dataclasses

    from workbench import paths
    from workbench.training.crossval import run_crossval
    from workbench.training.recipes import get_recipe
    from workbench.training.spec import CorpusOptions, RunSpec

    ckpt = _checkpoint(args.work, args.kind)
    layers = [int(i) for i in args.layers.split(",")]
    folds = [int(f) for f in args.folds.split(",")] if args.folds else None
    corpus = CorpusOptions("synthetic", size=args.corpus_size)
    manifest = corpus.load("iemocap4")
    if args.subset < 1.0:
        # every n-th utterance of each (session, label): all sessions and classes stay, in proportion
        rng = np.random.default_rng(0)
        groups: dict[tuple[str, str], list[str]] = {}
        for u in manifest:
            groups.setdefault((u.session, u.label), []).append(u.id)
        keep = {i for ids in groups.values() for i in rng.permutation(ids)[: max(1, round(args.subset * len(ids)))]}
        manifest = manifest.filter(lambda u: u.id in keep)
    audio_s = sum(u.duration for u in manifest)
    for model in args.models.split(","):
        recipe = get_recipe(model, "demo")
        audio = recipe.features["audio"]
        features = dict(recipe.features, audio=dataclasses.replace(
            audio, config={**audio.config, "checkpoint": str(ckpt), "layers": layers}))
        spec = RunSpec.create(model, recipe.replace(features=features), folds=folds, device="cpu")
        t0 = time.perf_counter()
        rows = run_crossval(spec, corpus, manifest=manifest, runs_root=args.work / "runs", progress=False)
        wall = time.perf_counter() - t0
        ua = rows["ua"].astype(float)
        store = paths.cache_dir() / "ssl_layers"
        size = sum(f.stat().st_size for f in store.rglob("*.npy")) if store.is_dir() else 0
        print(json.dumps({"measure": "train", "model": model, "recipe": "demo", "corpus": args.corpus_size,
                          "utterances": len(manifest), "audio_s": round(audio_s, 1), "subset": args.subset,
                          "checkpoint": args.kind, "layers": layers, "ssl_store_mib": round(size / 2**20, 1),
                          "folds": sorted(rows["fold"].astype(str).unique().tolist()), "ua_mean": round(float(ua.mean()), 4),
                          "ua_per_fold": [round(float(u), 4) for u in ua], "wall_s": round(wall, 1)}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["speed", "memory", "memory-child", "train"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/ssl_bench"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--clip-seconds", type=float, default=5.0)
    ap.add_argument("--kind", default="base")
    ap.add_argument("--kinds", default="tiny,base")
    ap.add_argument("--chunked", type=int, default=1)
    ap.add_argument("--layers", default="0,4,8,12")
    ap.add_argument("--folds", default="")
    ap.add_argument("--models", default="ssl_baseline,ssl_fusion")
    ap.add_argument("--corpus-size", default="demo")
    ap.add_argument("--subset", type=float, default=1.0, help="train: fraction of the corpus kept per session and class")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    {"speed": speed, "memory": memory, "memory-child": _memory_child, "train": train}[args.part](args)


if __name__ == "__main__":
    main()
