"""The ``workbench`` command. Each subcommand is a thin wrapper over a library function.

Errors: a user-fixable problem (a WorkbenchError from workbench/errors.py, or a path that does
not exist, is not readable, is a folder or is not one) prints one line,
``workbench: error: <message>``, on stderr and exits 1; ``--debug`` (before or after the
subcommand) re-raises it with its traceback instead. Ctrl-C prints ``interrupted`` and exits
130. Anything else is a bug and keeps its traceback. Impossible numbers (``--epochs -1``,
``--jobs 0``) are refused by argparse, naming the option, with exit code 2.

``workbench list NOUN`` lists the names options accept (models, variants, recipes, protocols,
label schemes, corpora, corpus sizes, claims), each with one line of description.

Parameter names are those of the notebooks and the Python API: ``--corpus-size`` (smoke, demo,
full: the synthetic corpus) and ``--corpus-seed``, ``--recipe`` (paper, demo, smoke: the
training recipe), ``--runs-root`` (a runs folder; a relative path is relative to the working
directory, as everywhere: :func:`workbench.training.runs_root.resolve_runs_root`). ``--out`` is
where a command writes an output that is not a runs root (``batch``'s executed notebooks,
``corpus synth``'s corpus folder, ``bundle``'s file); ``--runs-root`` is always a runs folder.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable

from workbench.catalog import LISTINGS
from workbench.distributed import BackendOptions, BackendOptionsError, RayMissingError
from workbench.errors import WorkbenchError

# Names that options accept come from the registries (``workbench list``). The recipes' registry,
# workbench.training.recipes.RECIPE_NOTES, imports torch (seconds), so a copy stands here and
# tests/test_names.py checks it against the registry.
RECIPES = ["paper", "demo", "smoke"]

#: Exceptions that are the user's to fix: printed as one line, no traceback.
USER_ERRORS = (WorkbenchError, RayMissingError, BackendOptionsError, FileNotFoundError, PermissionError,
               IsADirectoryError, NotADirectoryError)
EXIT_USER_ERROR = 1  # 2 is argparse's
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


# --------------------------------------------------------------------------- argument types
def _at_least(kind: type[int] | type[float], minimum: int, name: str) -> Callable[[str], Any]:
    """An argparse type named ``name``: ``text`` as a ``kind`` (finite, for a float) that is at
    least ``minimum``. The name is what argparse and tracebacks show for it.

    >>> positive_int("3"), non_negative_float("0.5"), positive_int.__name__
    (3, 0.5, 'positive_int')
    """
    what = "an integer" if kind is int else "a number"
    at_least = "0 or more" if minimum == 0 else f"at least {minimum}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {at_least}, got {text}")
        return value

    parse.__name__ = parse.__qualname__ = name
    parse.__doc__ = f"argparse type: {what} {at_least}."
    return parse


positive_int = _at_least(int, 1, "positive_int")
non_negative_int = _at_least(int, 0, "non_negative_int")
non_negative_float = _at_least(float, 0, "non_negative_float")


def _items(text: str, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise argparse.ArgumentTypeError(f"expected comma-separated {what} without empty items, got {text!r}")
    return items


def seed_list(text: str) -> list[int]:
    """argparse type: comma-separated seeds (integers >= 0), at least one."""
    return [non_negative_int(item) for item in _items(text, "seeds, e.g. 0,1,2")]


def positive_int_list(text: str) -> list[int]:
    """argparse type: comma-separated integers >= 1, at least one (e.g. 1,4,8)."""
    return [positive_int(item) for item in _items(text, "counts, e.g. 1,4,8")]


def fold_list(text: str) -> list[int | str] | None:
    """argparse type: comma-separated fold indices or names; empty means every fold (None)."""
    if not text.strip():
        return None
    return [int(f) if f.isdigit() else f for f in _items(text, "fold indices or names, e.g. 0,1 or Ses01")]


def json_object(text: str) -> dict:
    """argparse type: a JSON object, e.g. '{"hidden": 64}'."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e}): {text!r}; e.g. '{{\"hidden\": 64}}'")
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"hidden\": 64}}', got {text!r}")
    return value


def _runs_root(args: argparse.Namespace) -> Path:
    """The runs folder of ``--runs-root``
    (:func:`~workbench.training.runs_root.resolve_runs_root`: relative to the working directory;
    left out: ``$WORKBENCH_RUNS``, or its folder ``runs_root_under`` of the subcommand), said on
    stdout: where runs go is never a guess."""
    from workbench.training.runs_root import resolve_runs_root

    root = resolve_runs_root(args.runs_root, getattr(args, "runs_root_under", None))
    print(f"runs root: {root}", flush=True)  # stdout: stderr stays one line when the command fails
    return root


def _list(args: argparse.Namespace) -> int:
    from workbench.catalog import format_table, listing

    print(format_table(listing(args.what, args.model)))
    return 0


def _corpus_synth(args: argparse.Namespace) -> int:
    from workbench.corpus.synthetic import generate_corpus

    root = generate_corpus(args.out, corpus_size=args.corpus_size, corpus_seed=args.corpus_seed,
                           progress=not args.quiet)
    print(root)
    return 0


EXIT_DIFFERENCES = 3  # `corpus check`: the copy differs from the standard list (1 is an error, 2 a usage error)


def _corpus_check(args: argparse.Namespace) -> int:
    import pandas as pd

    from workbench.corpus.standard import TOTAL_UTTERANCES, check_standard

    if (args.root is None) == (args.manifest is None):
        raise WorkbenchError("corpus check: give either --root (an IEMOCAP_full_release folder) or --manifest")
    if args.manifest is not None:
        from workbench.corpus.manifest import Manifest

        manifest = Manifest.load(args.manifest)
    else:
        from workbench.corpus.iemocap import prepare_iemocap

        manifest = prepare_iemocap(args.root)
        skipped = len(manifest.report.skipped) if manifest.report else 0
        print(f"read {len(manifest)} utterances from {args.root}; the loader skipped {skipped} item(s)")
    standard = None if args.standard is None else pd.read_csv(args.standard)
    tolerance = {} if args.tolerance is None else {"duration_tolerance": args.tolerance}
    result = check_standard(manifest, standard, total_utterances=TOTAL_UTTERANCES if standard is None else None,
                            **tolerance)
    print(result.report(limit=args.limit or None))
    if args.csv:
        from workbench.io import atomic_write

        table = result.to_frame()
        atomic_write(Path(args.csv), lambda p: table.to_csv(p, index=False))
        print(f"wrote {len(table)} difference(s) to {args.csv}")
    return 0 if result.ok else EXIT_DIFFERENCES


def _batch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench import paths
    from workbench.batch import BatchInterrupted, read_results_table, run_grid, write_summary
    from workbench.grid import load_grid

    try:
        results = run_grid(load_grid(args.grid), args.out, _backend(args), force=args.force,
                           html=not args.no_html)
    except BatchInterrupted as e:  # summarise what finished, then let main() exit 130
        table = write_summary(e.results, args.out, read_results_table(paths.runs_dir()))
        print(table.to_string(index=False))
        done = int(table["status"].isin(["ok", "failed", "skipped"]).sum())
        print(f"{done} of {len(table)} notebook(s) finished before the interrupt; summary in "
              f"{Path(args.out) / 'summary.csv'}, partial copies in *.INTERRUPTED.ipynb")
        raise
    table = write_summary(results, args.out, read_results_table(paths.runs_dir()))
    print(table.to_string(index=False))
    failed = int((table["status"] == "failed").sum())
    if failed:
        print(f"{failed} notebook(s) failed; executed copies with the error are in {args.out}")
    return 1 if failed else 0


def _bench_features(args: argparse.Namespace) -> int:
    from workbench.bench import bench_features, wav_dir_manifest

    if args.wav_dir:
        manifest = wav_dir_manifest(args.wav_dir)
    elif args.manifest:
        from workbench.corpus.manifest import Manifest

        manifest = Manifest.load(args.manifest)
    else:
        from workbench.corpus import load_corpus

        manifest = load_corpus(args.corpus, root=args.root, corpus_size=args.corpus_size,
                               corpus_seed=args.corpus_seed)
    if args.limit:
        manifest = manifest.subset(manifest.ids[: args.limit])
    result = bench_features(manifest, device=args.device, batch_size=args.batch_size, opensmile=not args.no_opensmile)
    print(result.report())
    if args.json:
        from dataclasses import asdict

        with open(args.json, "w") as f:
            json.dump(asdict(result), f, indent=1)
    return 0 if all(result.checks.values()) else 1


def _bench_train(args: argparse.Namespace) -> int:
    import pandas as pd

    from workbench.io import atomic_write
    from workbench.training.bench import (
        BENCH_MODELS,
        IEMOCAP4_UTTERANCES,
        bench_concurrent,
        bench_training,
        concurrent_report,
        report,
    )

    models = [m for m in args.models.split(",") if m] or list(BENCH_MODELS)
    lengths = None
    if args.lengths_from:
        from workbench.corpus import load_corpus

        lengths = load_corpus("synthetic", corpus_size=args.lengths_from, label_scheme="iemocap4")
    bucketing = {"both": (True, False), "on": (True,), "off": (False,)}[args.bucketing]
    frames = []
    for model in models:  # one model at a time, so a long run shows (and keeps) partial results
        if args.concurrent:
            if lengths is not None:
                raise WorkbenchError("--concurrent draws IEMOCAP or log-normal lengths (--lengths), not --lengths-from")
            frame = bench_concurrent(model, args.concurrent, recipe=args.recipe,
                                     n_utterances=args.utterances or IEMOCAP4_UTTERANCES, epochs=args.epochs,
                                     device=args.device, lengths=args.lengths, batch_size=args.batch_size,
                                     threads=args.threads)
            for _, r in frame.iterrows():
                print(f"{model:20s} {r.concurrent:2d} at once {r.utts_per_second_total:8.0f} utts/s total  "
                      f"{r.utts_per_second_each:8.0f} each  {r.span_seconds:7.1f} s", flush=True)
        else:
            frame = bench_training([model], recipe=args.recipe, n_utterances=args.utterances or IEMOCAP4_UTTERANCES,
                                   epochs=args.epochs, bucketing=bucketing, device=args.device, lengths_from=lengths,
                                   batch_size=args.batch_size, progress=not args.quiet, lengths=args.lengths)
            for _, r in frame.iterrows():
                print(f"{model:20s} bucketing={r.bucketing!s:5s} {r.utts_per_second:8.0f} utts/s  "
                      f"{r.train_seconds:7.1f} s train ({r.epochs} epochs)  {r.wall_seconds:7.1f} s wall  "
                      f"peak GPU {r.peak_gpu_gib:.2f} GiB", flush=True)
        frames.append(frame)
        if args.csv:
            done = pd.concat(frames, ignore_index=True)
            atomic_write(args.csv, lambda p: done.to_csv(p, index=False))
    if args.concurrent:
        print(concurrent_report(pd.concat(frames, ignore_index=True)))
        return 0
    print(report(pd.concat(frames, ignore_index=True)))
    return 0


def _smoke_note(recipe: str) -> None:
    """Smoke numbers (chance level) look broken without a word: say what the recipe is for."""
    if recipe == "smoke":
        from workbench.training.recipes import smoke_note

        print(smoke_note())


def _train(args: argparse.Namespace) -> int:
    from workbench.training import CorpusOptions, RunSpec, run_crossval
    from workbench.training.results import results_dir

    spec = RunSpec.create(args.model, args.recipe, protocol=args.protocol, folds=args.folds, seeds=args.seeds,
                          model_options=args.model_options, epochs=args.epochs, device=args.device,
                          text_source=args.text_source, variant=args.variant, label_scheme=args.label_scheme,
                          text_encoder=args.text_encoder, speech_encoder=args.speech_encoder)
    backend = _backend(args)
    runs_root = _runs_root(args)
    if args.bundle:
        from workbench.training.bundle import crossval_from_bundle

        rows = crossval_from_bundle(args.bundle, spec, backend, runs_root=runs_root, rerun=args.rerun,
                                    progress=not args.quiet)
    else:
        corpus = CorpusOptions(args.corpus, args.root, args.corpus_size, args.corpus_seed)
        rows = run_crossval(spec, corpus, backend, runs_root=runs_root, rerun=args.rerun, progress=not args.quiet)
    cols = ["run_id", "n_train", "n_test", "epochs_run", "wa", "ua", "macro_f1", "train_seconds"]
    if len(rows):
        print(rows[cols].to_string(index=False))
        print(f"mean UA {rows['ua'].mean():.3f} over {len(rows)} run(s)")
    failed = rows.attrs.get("failed", [])
    for f in failed:
        print(f"FAILED fold {f['fold']} seed {f['seed']}: {f['error']}")
    reused = rows.attrs.get("reused", 0)
    print(f"runs trained {rows.attrs.get('trained', 0)}, reused {reused}{' (--rerun retrains them)' if reused else ''}; "
          f"runs folder {runs_root} (results table {results_dir(runs_root) / 'results.parquet'})")
    _smoke_note(args.recipe)
    return 1 if failed else 0


def _reproduce(args: argparse.Namespace) -> int:
    from workbench.experiments.reproduce import reproduce, select_claims, verdict_label, write_ledger
    from workbench.training import CorpusOptions

    if args.claim_file:
        from workbench.evaluation.user_claims import load_claims

        own = load_claims(args.claim_file)
        claims = (select_claims(_names(args.papers), _names(args.claims)) if args.papers or args.claims else []) + own
    else:
        claims = select_claims(_names(args.papers), _names(args.claims))
    out = _runs_root(args)
    corpus = CorpusOptions(args.corpus, args.root, args.corpus_size, args.corpus_seed)
    ledger = reproduce(claims, corpus, out, recipe=args.recipe, seeds=args.seeds, folds=args.folds,
                       backend=_backend(args),
                       n_boot=args.n_boot, progress=not args.quiet,
                       quick=args.quick)
    pq, page = write_ledger(ledger, out / "ledger")
    for r in ledger.to_dict("records"):
        if r["verdict"] == "not run":
            interval = ""
        elif r.get("relation") == "rank_change":
            interval = f"{r['difference']:.3f} of system pairs flip (adjusted p {r['p_value']:.2g})"
        else:
            interval = f"{r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
        print(f"{r['claim']:45s} {verdict_label(r):21s} {interval}")
        if r["verdict"] != "not run" and r.get("covers"):
            print(f"    accounts for: {r['covers']}")
        if r["verdict"] == "not run":
            print(f"    {r['reason']}")
    print(f"{len(ledger)} claim(s) in {ledger.attrs['wall_seconds']:.0f} s; runs trained {ledger.attrs['trained']}, "
          f"reused {ledger.attrs['reused']}; runs folder {out}; ledger: {page} and {pq}")
    _smoke_note(args.recipe)
    return 0


def _names(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _bundle(args: argparse.Namespace) -> int:
    from workbench.training import CorpusOptions
    from workbench.training.bundle import export_bundle

    corpus = CorpusOptions(args.corpus, args.root, args.corpus_size, args.corpus_seed)
    path = export_bundle(args.model, args.out, recipe=args.recipe, corpus=corpus, progress=not args.quiet,
                         compress=args.compress, text_source=args.text_source)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


def _backend(args: argparse.Namespace) -> BackendOptions:
    """The one :class:`~workbench.distributed.BackendOptions` of the backend and local-parallelism
    option groups, which ``train``, ``reproduce`` and ``batch`` share."""
    return BackendOptions(args.backend, args.ray_address, args.max_retries, args.cpus_per_task, args.gpus_per_task,
                          jobs=args.jobs, threads=args.threads)


def _corpora() -> list[str]:
    from workbench.corpus.registry import list_corpora

    return list(list_corpora())


def _sizes() -> list[str]:
    from workbench.corpus.synthetic import CORPUS_SIZES

    return list(CORPUS_SIZES)


def _add_corpus_options(p: argparse.ArgumentParser) -> None:
    sizes = _sizes()
    corpora = _corpora()
    p.add_argument("--corpus", default="synthetic", choices=corpora,
                   help=f"{', '.join(corpora)} (`workbench list corpora`)")
    p.add_argument("--root", default=None, help="corpus root (real corpora)")
    p.add_argument("--corpus-size", default="demo", choices=sizes, help="size of the synthetic corpus")
    p.add_argument("--corpus-seed", type=non_negative_int, default=0, help="seed of the synthetic corpus")


def _add_recipe(p: argparse.ArgumentParser, default: str, help: str) -> None:
    p.add_argument("--recipe", default=default, choices=RECIPES, help=f"{help} (`workbench list recipes`)")


def _add_runs_root(p: argparse.ArgumentParser, default: str | None, help: str) -> None:
    p.add_argument("--runs-root", default=default, help=help)


def _add_backend_options(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_argument_group("backend", f"where the {what} run (see workbench/distributed.py)")
    g.add_argument("--backend", default="local", choices=["local", "ray"],
                   help="local: this machine (default); ray: one Ray task each (needs pip install -e '.[ray]')")
    g.add_argument("--ray-address", default=None,
                   help="connect to a running Ray cluster (e.g. auto, ray://head:10001); default: start a local one")
    g.add_argument("--max-retries", type=non_negative_int, default=2,
                   help="ray: retries of a failed task before it is reported")
    g.add_argument("--cpus-per-task", type=non_negative_float, default=1.0, help="ray: CPUs each task reserves")
    g.add_argument("--gpus-per-task", type=non_negative_float, default=None,
                   help="ray: GPUs each task reserves, e.g. 0.25 packs 4 per GPU (default: 0.25 if the cluster "
                        "has GPUs, else 0)")


def _add_jobs(p: argparse.ArgumentParser, what: str = "trainings") -> None:
    one = what.rstrip("s")
    g = p.add_argument_group("local parallelism", f"{what} at once on this machine (docs/performance.md)")
    g.add_argument("--jobs", type=positive_int, default=1,
                   help=f"local: {what} at once, one worker process each (default 1: one after another here)")
    g.add_argument("--threads", type=positive_int, default=1, help=f"local, with --jobs above 1: torch threads per {one}")


def _add_debug(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument("--debug", action="store_true", default=default,
                   help="show the full traceback of an error instead of one line")


def _add_list_command(sub: Any) -> list[argparse.ArgumentParser]:
    """``workbench list``: its parser, returned for the common options."""
    ls = sub.add_parser("list", help="list the names the workbench knows, each with one line of description")
    ls.add_argument("what", choices=list(LISTINGS), help="what to list")
    ls.add_argument("model", nargs="?", default=None, help="variants: only this model's")
    ls.set_defaults(func=_list)
    return [ls]


def _add_corpus_command(sub: Any, sizes: list[str]) -> list[argparse.ArgumentParser]:
    """``workbench corpus``: its parsers, returned for the common options."""
    corpus = sub.add_parser("corpus", help="generate the synthetic corpus or check an IEMOCAP copy")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", required=True)
    synth = corpus_sub.add_parser("synth", help="generate the built-in synthetic corpus")
    synth.add_argument("--corpus-size", default="demo", choices=sizes,
                       help="smoke (~200 utterances), demo (~2,000) or full (~10,000)")
    synth.add_argument("--out", required=True, help="output directory")
    synth.add_argument("--corpus-seed", type=non_negative_int, default=0, help="seed of every random choice")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=_corpus_synth)
    check = corpus_sub.add_parser(
        "check", help="compare an IEMOCAP copy with the standard 4-class list (exit 3 if they differ)",
        description="Compare a prepared IEMOCAP copy with the standard 4-class list that SUPERB and EmoBox "
                    "ship (in the package: workbench/corpus/reference/): counts (10,039 utterances, 5,531 in "
                    "the 4-class set, 151 dialogs), then each difference by id: standard utterances missing "
                    "from the copy (with the loader's reason), extra 4-class utterances, label (hap+exc "
                    "merged), session, speaker and duration disagreements.",
        epilog="exit status: 0 when the copy matches, 3 when differences are found, 1 on an error "
               "(e.g. a missing folder)")
    check.add_argument("--root", default=None, help="the IEMOCAP_full_release folder (or a folder holding it)")
    check.add_argument("--manifest", default=None, help="a prepared manifest (.parquet/.jsonl) instead of --root")
    check.add_argument("--standard", default=None,
                       help="a list of your own with the same columns (id,label,code,session,speaker,duration_s) "
                            "instead of the shipped one; the total with every label is then not checked")
    check.add_argument("--tolerance", type=non_negative_float, default=None,
                       help="seconds two durations may differ by (default 0.01: "
                            "workbench.corpus.standard.DURATION_TOLERANCE_S)")
    check.add_argument("--limit", type=non_negative_int, default=20,
                       help="rows printed per difference table (0: all)")
    check.add_argument("--csv", default=None, help="also write every difference to this CSV (kind,id,standard,found)")
    check.set_defaults(func=_corpus_check)
    return [synth, check]


def _add_batch_command(sub: Any) -> list[argparse.ArgumentParser]:
    """``workbench batch``: its parser, returned for the common options."""
    batch = sub.add_parser("batch", help="run a grid of notebooks headlessly with papermill")
    batch.add_argument("grid", help="grid YAML (see workbench/grid.py)")
    batch.add_argument("--out", required=True, help="folder for executed notebooks (under runs/)")
    batch.add_argument("--force", action="store_true", help="rerun unchanged cells too")
    batch.add_argument("--no-html", action="store_true", help="skip the HTML export")
    _add_backend_options(batch, "notebooks")
    _add_jobs(batch, "notebooks")
    batch.set_defaults(func=_batch)
    return [batch]


def _add_bench_command(sub: Any, sizes: list[str]) -> list[argparse.ArgumentParser]:
    """``workbench bench``: its parsers, returned for the common options."""
    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    bf = bench_sub.add_parser("features", help="MFCC (batched torch vs librosa), openSMILE and cache reload rates")
    bf.add_argument("--corpus", default="synthetic", choices=_corpora(),
                    help=f"{', '.join(_corpora())} (`workbench list corpora`)")
    bf.add_argument("--root", default=None, help="corpus root (real corpora)")
    bf.add_argument("--corpus-size", default="smoke", choices=sizes, help="size of the synthetic corpus")
    bf.add_argument("--corpus-seed", type=non_negative_int, default=0, help="seed of the synthetic corpus")
    bf.add_argument("--manifest", default=None, help="a manifest file (.jsonl/.parquet) instead of a corpus")
    bf.add_argument("--wav-dir", default=None, help="every .wav under this folder instead of a corpus")
    bf.add_argument("--limit", type=non_negative_int, default=0, help="first N utterances only (0: all)")
    bf.add_argument("--device", default="auto", help="auto, cpu or cuda for the batched path")
    bf.add_argument("--batch-size", type=positive_int, default=16)
    bf.add_argument("--no-opensmile", action="store_true", help="skip the (slow) openSMILE measurement")
    bf.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    bf.set_defaults(func=_bench_features)

    bt = bench_sub.add_parser("train", help="training throughput per model, with and without length bucketing, "
                              "on an IEMOCAP-sized fold of random features (workbench/training/bench.py)")
    bt.add_argument("--models", default="", help="comma-separated model names (default: every registered model)")
    _add_recipe(bt, "paper", "training recipe")
    bt.add_argument("--epochs", type=positive_int, default=None,
                    help="override the recipe's epochs (early stopping is off)")
    bt.add_argument("--utterances", type=non_negative_int, default=0,
                    help="corpus size (default: IEMOCAP's 4-class 5,531)")
    bt.add_argument("--lengths", default="iemocap", choices=["iemocap", "lognormal"],
                    help="utterance durations: iemocap (default: the standard 4-class IEMOCAP list shipped with the "
                         "package) or lognormal (the IEMOCAP-like model of benchmarks before 2026-12-07)")
    bt.add_argument("--lengths-from", default=None, choices=sizes,
                    help="take durations and word counts from the synthetic corpus of this size instead")
    bt.add_argument("--concurrent", type=positive_int_list, default=None, metavar="N,N,...",
                    help="instead: the total throughput of N trainings at once sharing this machine and its GPU, "
                         "for each N (e.g. 1,4,8), as --jobs N runs them")
    bt.add_argument("--threads", type=positive_int, default=1, help="with --concurrent: torch threads per training")
    bt.add_argument("--bucketing", default="both", choices=["both", "on", "off"])
    bt.add_argument("--batch-size", type=positive_int, default=None, help="override the recipe's batch size")
    bt.add_argument("--device", default="auto", help="auto, cpu or cuda")
    bt.add_argument("--csv", default=None, help="write the rows to this CSV (rewritten after each model)")
    bt.add_argument("--quiet", action="store_true", help="no progress bars")
    bt.set_defaults(func=_bench_train)
    return [bf, bt]


def _add_train_command(sub: Any) -> list[argparse.ArgumentParser]:
    """``workbench train``: its parser, returned for the common options."""
    tr = sub.add_parser("train", help="cross-validate one model (folds x seeds) into the results table")
    tr.add_argument("model", help="registered model name (`workbench list models`)")
    _add_recipe(tr, "demo", "training recipe: paper (each paper's set-up; GPU-sized), demo (CPU-sized) or smoke")
    _add_corpus_options(tr)
    tr.add_argument("--protocol", default=None, help="fold protocol (`workbench list protocols`; default: the recipe's)")
    tr.add_argument("--folds", type=fold_list, default=None,
                    help="comma-separated fold indices or names (default: all)")
    tr.add_argument("--seeds", type=seed_list, default=[0], help="comma-separated seeds (default: 0)")
    tr.add_argument("--epochs", type=positive_int, default=None, help="override the recipe's epochs")
    tr.add_argument("--variant", default=None,
                    help="one of the model's declared variants (`workbench list variants MODEL`)")
    tr.add_argument("--label-scheme", default=None,
                    help="class set, e.g. iemocap7 (`workbench list label-schemes`; default: the recipe's)")
    tr.add_argument("--text-source", default="oracle", choices=["oracle", "asr"],
                    help="the text the model reads in training and testing: human transcript or ASR")
    tr.add_argument("--text-encoder", default=None, metavar="CHECKPOINT_OR_GLOVE",
                    help="text encoder instead of the bundled MiniLM: a Hugging Face checkpoint (local directory, "
                         "or a name in the Hugging Face cache such as bert-base-uncased) or a GloVe .txt file "
                         "(docs/encoders.md)")
    tr.add_argument("--speech-encoder", default=None, metavar="CHECKPOINT",
                    help="self-supervised speech checkpoint (local directory or Hugging Face cache name) for "
                         "models reading ssl_layers features (docs/encoders.md)")
    tr.add_argument("--model-options", type=json_object, default=None,
                    help='model config overrides as JSON, e.g. \'{"hidden": 64}\'')
    tr.add_argument("--device", default="auto", help="auto, cpu or cuda")
    _add_runs_root(tr, None, "runs folder for run directories and the results table (default $WORKBENCH_RUNS; "
                             "a relative path is relative to the working directory)")
    tr.add_argument("--rerun", action="store_true", help="retrain runs already in the results table")
    tr.add_argument("--bundle", default=None,
                    help="train on a file from `workbench bundle` instead of the corpus and feature cache")
    tr.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_backend_options(tr, "trainings")
    _add_jobs(tr)
    tr.set_defaults(func=_train)
    return [tr]


def _add_reproduce_command(sub: Any) -> list[argparse.ArgumentParser]:
    """``workbench reproduce``: its parser, returned for the common options."""
    rp = sub.add_parser("reproduce", help="rerun the papers' claims as experiments and write the ledger of verdicts")
    rp.add_argument("--papers", default=None, help="comma-separated papers, e.g. xu2019 (`workbench list claims` shows "
                                                     "each claim's paper; default: all claims)")
    rp.add_argument("--claims", default=None, help="comma-separated claim ids (`workbench list claims`)")
    rp.add_argument("--claim-file", default=None, help="your own claims (YAML or JSON; format in "
                                                       "workbench.evaluation.user_claims), judged by the same rule; "
                                                       "alone, only these run")
    _add_recipe(rp, "demo", "training recipe of every run: paper (GPU), demo (CPU), smoke (a plumbing check)")
    _add_corpus_options(rp)
    rp.add_argument("--seeds", type=seed_list, default=[0], help="comma-separated seeds (default: 0)")
    rp.add_argument("--folds", type=fold_list, default=None, help="fold indices or names (default: all)")
    rp.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap replicates per claim")
    rp.add_argument("--quick", action="store_true", help="the first seed and folds 0,1 of each protocol only "
                                                         "(unless --folds); verdicts are marked (quick)")
    _add_runs_root(rp, None, "runs folder of the experiments, the ledger in its ledger/ (default "
                             "$WORKBENCH_RUNS/reproduce; a relative path is relative to the working directory)")
    rp.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_backend_options(rp, "trainings")
    _add_jobs(rp)
    rp.set_defaults(func=_reproduce, runs_root_under="reproduce")
    return [rp]


def _add_bundle_command(sub: Any) -> list[argparse.ArgumentParser]:
    """``workbench bundle``: its parser, returned for the common options."""
    bu = sub.add_parser("bundle", help="write one model's features and the manifest to a file, for `train --bundle` "
                                       "on a machine without the corpus or the extractors")
    bu.add_argument("model", help="registered model name (`workbench list models`)")
    bu.add_argument("--out", required=True, help="bundle file to write (.npz)")
    _add_recipe(bu, "demo", "training recipe whose features to export (train with the same recipe)")
    _add_corpus_options(bu)
    bu.add_argument("--compress", action="store_true", help="deflate the arrays: a smaller file to copy, slower to write")
    bu.add_argument("--text-source", default="oracle", choices=["oracle", "asr"],
                    help="store the human transcript's or the ASR transcript's text inputs")
    bu.add_argument("--quiet", action="store_true", help="no progress bars")
    bu.set_defaults(func=_bundle)
    return [bu]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_debug(parser, False)
    sub = parser.add_subparsers(dest="command", required=True)
    sizes = _sizes()
    leaves = [
        *_add_list_command(sub),
        *_add_corpus_command(sub, sizes),
        *_add_batch_command(sub),
        *_add_bench_command(sub, sizes),
        *_add_train_command(sub),
        *_add_reproduce_command(sub),
        *_add_bundle_command(sub),
    ]
    for leaf in leaves:
        # SUPPRESS: a subcommand without --debug must not reset a --debug given before it
        _add_debug(leaf, argparse.SUPPRESS)
    return parser


def error_line(exc: BaseException) -> str:
    """``exc`` as one line for the user: an OSError from the system as "reason: path", any
    other message with its lines joined by "; "."""
    if isinstance(exc, OSError) and not isinstance(exc, WorkbenchError) and exc.strerror and exc.filename:
        text = f"{exc.strerror}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def run_reporting_errors(func: Callable[[], int], debug: bool = False, prog: str = "workbench") -> int:
    """``func()`` with the command's error policy (module docstring): user errors are one line
    on stderr and exit 1, Ctrl-C exits 130, with ``debug`` both re-raise; bugs propagate."""
    try:
        return func()
    except USER_ERRORS as e:
        if debug:
            raise
        print(f"{prog}: error: {error_line(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_reporting_errors(lambda: args.func(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
