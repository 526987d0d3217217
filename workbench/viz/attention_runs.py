"""The runs notebook 06 looks at: find (or train) a model's run in a runs root, and compare
the model trained on the human transcripts with its twin trained on ASR text.

:func:`choose_run` picks the newest run of a model on a corpus and text source
(:func:`~workbench.viz.explorer.find_runs`), training fold 0 / seed 0 first when none exists
and training was asked for. :func:`compare_text_sources` puts the run and its counterpart on
the other text (:func:`~workbench.training.runs_root.counterpart`, trained when missing) side
by side: UA on the fold's test set and how well each map follows the corpus's word timing,
beside the uniform and forced-alignment baselines.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from workbench.corpus.manifest import Manifest
from workbench.errors import WorkbenchError
from workbench.evaluation.alignment import agreement_table, forced_spans
from workbench.training.recipes import Recipe
from workbench.training.runs_root import counterpart
from workbench.training.spec import CorpusOptions, RunSpec
from workbench.training.texts import pooled_wer
from workbench.viz.explorer import ExplorerRun, attention_agreement, find_runs, run_from_dir


class RunNotFoundError(WorkbenchError, FileNotFoundError):
    """No trained run of the model asked for; the message names the runs root and the fix."""


def choose_run(runs_root: str | Path, model: str, corpus: CorpusOptions, text_source: str = "oracle",
               run_dir: str | Path | None = None, train: bool = False, recipe: str | Recipe = "demo",
               progress: bool = False) -> tuple[str, pd.DataFrame]:
    """``(run directory, every run found)`` for ``model`` on ``corpus`` (its name, and its size
    for the synthetic corpus) read on ``text_source`` text under ``runs_root``, newest first.
    ``run_dir`` given: that one. None found and ``train``: ``recipe`` is cross-validated on
    fold 0 with seed 0 into ``runs_root`` first. Still none: :class:`RunNotFoundError`."""
    where = dict(corpus=corpus.name, corpus_size=corpus.size if corpus.name == "synthetic" else None)
    found = find_runs(runs_root, model, text_source=text_source, **where)
    if run_dir is not None:
        return str(run_dir), found
    if found.empty and train:
        from workbench.training.crossval import run_crossval

        run_crossval(RunSpec.create(model, recipe, folds=[0], seeds=[0], text_source=text_source), corpus,
                     runs_root=runs_root, progress=progress)
        found = find_runs(runs_root, model, text_source=text_source, **where)
    if found.empty:
        raise RunNotFoundError(f"no trained {model!r} run on {text_source} text for corpus {corpus.name!r} under "
                               f"{runs_root}: train one with notebook 04 (text_source = {text_source!r}), or add "
                               f"{model!r} to train_missing")
    return str(found.iloc[0]["run_dir"]), found


def compare_text_sources(run: ExplorerRun, runs_root: str | Path, manifest: Manifest | None = None,
                         root: str | Path | None = None, align_cache: str | Path | None = None,
                         progress: bool = False) -> pd.DataFrame:
    """The model of ``run`` trained and tested on oracle text and on ASR text (the run and its
    :func:`~workbench.training.runs_root.counterpart` on the other text, trained into
    ``runs_root`` when missing; ``root`` replaces the corpus folder the run recorded): per text
    source, UA on the fold's test set (mean per-class recall of its stored predictions) and the
    agreement table (:func:`~workbench.evaluation.alignment.agreement_table`) of its first map
    with the corpus's word timing, the uniform and forced baselines included. ``align_cache``:
    the forced alignments' cache file. ``.attrs["asr_wer"]``: the pooled word error rate of the
    ASR text on the test utterances."""
    source = run.config.get("text_source", "oracle")
    other = "asr" if source == "oracle" else "oracle"
    pair = {source: run,
            other: run_from_dir(counterpart(run.config, other, runs_root, root=root, progress=progress), manifest)}
    parts = []
    for name in ("oracle", "asr"):
        r = pair[name]
        p = r.predictions()
        spans = forced_spans(r.manifest.subset(r.ids), cache_path=align_cache)
        t = agreement_table(attention_agreement(r, r.maps()[0], forced=spans))
        t.insert(0, "ua", float(p.groupby("label")["correct"].mean().mean()))
        t.insert(0, "text", name)
        parts.append(t)
    table = pd.concat(parts, ignore_index=True)
    asr = pair["asr"]
    table.attrs["asr_wer"] = float(pooled_wer(asr.manifest, asr.ids))
    return table
