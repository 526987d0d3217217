"""The ``workbench`` command. Each subcommand is a thin wrapper over a library function."""

from __future__ import annotations

import argparse
import sys


def _corpus_synth(args: argparse.Namespace) -> int:
    from workbench.corpus.synthetic import generate_corpus

    root = generate_corpus(args.out, preset=args.preset, seed=args.seed, progress=not args.quiet)
    print(root)
    return 0


def _batch(args: argparse.Namespace) -> int:
    from workbench.batch import load_grid, run_grid, summary_table

    results = run_grid(load_grid(args.grid), args.out, jobs=args.jobs, force=args.force, html=not args.no_html)
    table = summary_table(results)
    print(table.to_string(index=False))
    failed = int((table["status"] == "failed").sum())
    if failed:
        print(f"{failed} notebook(s) failed; executed copies with the error are in {args.out}")
    return 1 if failed else 0


def _bench_features(args: argparse.Namespace) -> int:
    import json

    from workbench.bench import bench_features, wav_dir_manifest

    if args.wav_dir:
        manifest = wav_dir_manifest(args.wav_dir)
    elif args.manifest:
        from workbench.corpus.manifest import Manifest

        manifest = Manifest.load(args.manifest)
    else:
        from workbench.corpus import load_corpus

        manifest = load_corpus(args.corpus, root=args.root, preset=args.preset, seed=args.seed)
    if args.limit:
        manifest = manifest.subset(manifest.ids[: args.limit])
    result = bench_features(manifest, device=args.device, batch_size=args.batch_size, opensmile=not args.no_opensmile)
    print(result.report())
    if args.json:
        from dataclasses import asdict

        with open(args.json, "w") as f:
            json.dump(asdict(result), f, indent=1)
    return 0 if all(result.checks.values()) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    corpus = sub.add_parser("corpus", help="generate or prepare corpora")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", required=True)
    synth = corpus_sub.add_parser("synth", help="generate the built-in synthetic corpus")
    synth.add_argument("--preset", default="demo", choices=["smoke", "demo", "full"])
    synth.add_argument("--out", required=True, help="output directory")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=_corpus_synth)

    batch = sub.add_parser("batch", help="run a grid of notebooks headlessly with papermill")
    batch.add_argument("grid", help="grid YAML (see workbench/batch.py)")
    batch.add_argument("--out", required=True, help="folder for executed notebooks (under runs/)")
    batch.add_argument("--jobs", type=int, default=1, help="notebooks run at once")
    batch.add_argument("--force", action="store_true", help="rerun unchanged cells too")
    batch.add_argument("--no-html", action="store_true", help="skip the HTML export")
    batch.set_defaults(func=_batch)

    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    bf = bench_sub.add_parser("features", help="MFCC (batched torch vs librosa), openSMILE and cache reload rates")
    bf.add_argument("--corpus", default="synthetic", help="corpus for workbench.corpus.load_corpus")
    bf.add_argument("--root", default=None, help="corpus root (real corpora)")
    bf.add_argument("--preset", default="smoke", choices=["smoke", "demo", "full"])
    bf.add_argument("--seed", type=int, default=0)
    bf.add_argument("--manifest", default=None, help="a manifest file (.jsonl/.parquet) instead of a corpus")
    bf.add_argument("--wav-dir", default=None, help="every .wav under this folder instead of a corpus")
    bf.add_argument("--limit", type=int, default=0, help="first N utterances only (0: all)")
    bf.add_argument("--device", default="auto", help="auto, cpu or cuda for the batched path")
    bf.add_argument("--batch-size", type=int, default=32)
    bf.add_argument("--no-opensmile", action="store_true", help="skip the (slow) openSMILE measurement")
    bf.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    bf.set_defaults(func=_bench_features)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
