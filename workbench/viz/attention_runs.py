"""Notebook 06's oracle-vs-ASR comparison: a model trained on the human transcripts beside its
twin trained on ASR text.

:func:`compare_text_sources` puts a run and its counterpart on the other text side by side: UA
on the fold's test set and how well each map follows the corpus's word timing, beside the
uniform and forced-alignment baselines. It draws on runs that exist: finding or training the
run and its twin is :func:`workbench.experiments.runs.choose_run` and
:func:`~workbench.experiments.runs.counterpart`'s.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from workbench.corpus.manifest import Manifest
from workbench.evaluation.alignment import agreement_table, forced_spans
from workbench.training.texts import pooled_wer
from workbench.viz.explorer import ExplorerRun, attention_agreement, run_from_dir


def compare_text_sources(run: ExplorerRun, twin: ExplorerRun | str | Path, manifest: Manifest | None = None,
                         align_cache: str | Path | None = None) -> pd.DataFrame:
    """The model of ``run`` trained and tested on oracle text and on ASR text: the run and
    ``twin``, its counterpart on the other text (a run directory or a loaded run, e.g. from
    :func:`~workbench.experiments.runs.counterpart`): per text source, UA on the fold's test
    set (mean per-class recall of its stored predictions) and the agreement table
    (:func:`~workbench.evaluation.alignment.agreement_table`) of its first map with the corpus's
    word timing, the uniform and forced baselines included. ``align_cache``: the forced
    alignments' cache file. ``.attrs["asr_wer"]``: the pooled word error rate of the ASR text on
    the test utterances."""
    source = run.config.get("text_source", "oracle")
    other = "asr" if source == "oracle" else "oracle"
    if not isinstance(twin, ExplorerRun):
        twin = run_from_dir(twin, manifest)
    got = twin.config.get("text_source", "oracle")
    if got != other:
        raise ValueError(f"the twin of a run on {source} text must have read {other} text; {twin.run!r} read {got}")
    pair = {source: run, other: twin}
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
