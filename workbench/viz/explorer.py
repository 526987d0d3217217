"""An ipywidgets explorer of word-by-time attention, with audio playback.

:class:`ExplorerRun` wraps one model on one fold (a trained run directory through
:func:`run_from_dir`, or any model with a :class:`~workbench.training.data.SERDataset`) and runs
it on single utterances (batch of one, so maps carry no padding). :class:`AttentionExplorer`
puts widgets around it: choose run, fold, utterance (filtered by true label, prediction
correct/incorrect and speaker), map, head and background; play the utterance; pick a word to
play just the audio it attends to (:func:`~workbench.viz.attention.word_attention_span`); see
the true label, the prediction and the class probabilities.

Without a browser the widgets still build and update (tests read their state and
``explorer.figure``); figures and audio are only rendered into the Output widgets when an
IPython kernel is running, so headless papermill runs store widget views and nothing breaks.
Word selection is a dropdown rather than a click on the heatmap: click events need plotly's
FigureWidget (and the ``anywidget`` package), which the workbench does not depend on.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from workbench.corpus.manifest import Manifest
from workbench.evaluation.alignment import reference_spans, utterance_scores
from workbench.features.audio_io import load_audio
from workbench.features.words import split_words
from workbench.training.data import SERDataset, collate
from workbench.training.results import STORED_NAMES, read_table
from workbench.training.runs_root import find_runs  # noqa: F401  (a reader; lived here first)
from workbench.training.texts import oracle_text, reference_timings
from workbench.training.trainer import predict
from workbench.viz.attention import (
    AttentionView,
    attention_figure,
    attention_view,
    audio_segment,
    n_heads,
    viewable_maps,
    word_attention_span,
)

ALL = "(all)"


@dataclass
class UtteranceResult:
    """One utterance through one model: ``probs`` (C,), the words the model saw, and every
    attention map (batch of one) with its info."""

    id: str
    label: str
    pred: str
    probs: np.ndarray
    words: list[str]
    attentions: dict[str, torch.Tensor]
    attention_info: dict[str, Any]

    def view(self, name: str, head: int | str = "mean") -> AttentionView:
        """Map ``name`` as words x frames (see :func:`~workbench.viz.attention.attention_view`)."""
        return attention_view(self.attentions, self.attention_info, name, head, 0, self.words)


class ExplorerRun:
    """``model`` on the utterances of ``dataset`` (one fold's test set), named ``run``/``fold``.

    ``predictions`` (columns ``utt_id, label, pred, probs``) are taken as given (a run's
    ``predictions.parquet``) or computed on first use. ``manifest`` holds the utterances (its
    ``text`` is the text the model saw: oracle, or ASR when the run was trained on ASR text);
    attention is scored against the corpus's word timings either way
    (:func:`workbench.training.texts.reference_timings`).
    """

    def __init__(self, run: str, fold: str, model: torch.nn.Module, classes: Sequence[str], manifest: Manifest,
                 dataset: SERDataset, predictions: pd.DataFrame | None = None, config: Mapping[str, Any] | None = None):
        self.run, self.fold, self.model, self.classes = run, fold, model.eval(), list(classes)
        self.manifest, self.dataset, self.config = manifest, dataset, dict(config or {})
        self._index = {i: k for k, i in enumerate(dataset.ids)}
        self._predictions = predictions
        self._cache: dict[str, UtteranceResult] = {}

    @property
    def ids(self) -> list[str]:
        return list(self.dataset.ids)

    def infer(self, utt_id: str) -> UtteranceResult:
        """Run the model on one utterance (cached)."""
        if utt_id not in self._cache:
            if utt_id not in self._index:
                raise KeyError(f"utterance {utt_id!r} is not in run {self.run!r} fold {self.fold!r}")
            out = predict(self.model, collate([self.dataset[self._index[utt_id]]]))
            probs = out["probs"][0].numpy()
            utt = self.manifest[utt_id]
            words = split_words(utt.text) or ["<empty>"]  # an empty text is one placeholder row
            self._cache[utt_id] = UtteranceResult(utt_id, utt.label, self.classes[int(probs.argmax())], probs, words,
                                                  out["attentions"], out["attention_info"])
        return self._cache[utt_id]

    def predictions(self) -> pd.DataFrame:
        """``utt_id, label, pred, probs, speaker, correct`` for every utterance of the run."""
        if self._predictions is None:
            rows = [dict(utt_id=i, label=r.label, pred=r.pred, probs=r.probs.tolist())
                    for i in self.ids for r in [self.infer(i)]]
            self._predictions = pd.DataFrame(rows, columns=["utt_id", "label", "pred", "probs"])
        p = self._predictions[self._predictions["utt_id"].isin(self._index)].copy()
        p["speaker"] = [self.manifest[i].speaker for i in p["utt_id"]]
        p["correct"] = p["label"] == p["pred"]
        return p.reset_index(drop=True)

    def maps(self) -> list[str]:
        """Names of the maps drawable against time for this model (from one inference)."""
        return viewable_maps(self.infer(self.ids[0]).attention_info) if self.ids else []

    def figure(self, utt_id: str, name: str | None = None, head: int | str = "mean",
               background: str = "waveform", highlight: int | None = None, threshold: float = 0.5) -> go.Figure:
        """:func:`~workbench.viz.attention.attention_figure` for one utterance, reference spans
        from the corpus's word timings (not the recogniser's, for ASR text)."""
        r = self.infer(utt_id)
        name = name or self.maps()[0]
        view = r.view(name, head)
        utt = self.manifest[utt_id]
        ref = reference_spans(view.words, reference_timings(utt)) if "word" in r.attention_info[name].axes else None
        wave = load_audio(utt) if background != "none" else None
        title = f"{utt_id}: true {r.label}, predicted {r.pred} | {view.name}, " + (
            "mean of heads" if head == "mean" else f"head {head}")
        return attention_figure(view, wave, background=background, reference=ref, highlight=highlight,
                                threshold=threshold, title=title)


def run_from_dir(run_dir: str | Path, manifest: Manifest | None = None, texts: Mapping[str, str] | None = None,
                 cache: Any = None, features: Mapping[str, Any] | None = None, progress: bool = False) -> ExplorerRun:
    """An :class:`ExplorerRun` for a training run directory: its best weights on its test fold,
    with the inputs it was evaluated on (:func:`workbench.training.runs.load_run`: the same
    features, pooling and saved normalisation statistics).

    ``manifest`` defaults to the run's corpus reloaded; pass it for a real corpus root. The
    model reads the text it was trained on (a run trained on ASR text reads ASR text, its
    name ends in "asr"). ``texts`` (id -> transcript) replaces that text, a what-if whose
    predictions are recomputed; the reference word timings stay those of the corpus.
    ``features`` replaces the feature cache (see :func:`~workbench.training.runs.load_run`).
    """
    from workbench.training.runs import load_run

    run = load_run(run_dir, manifest, texts=texts, cache=cache, features=features, progress=progress)
    cfg = run.config
    pred_path = Path(run_dir) / "predictions.parquet"
    preds = read_table(pred_path) if pred_path.is_file() else None
    name = run_name(cfg["model"], cfg.get("config_hash", ""), cfg.get(STORED_NAMES["recipe"], ""), cfg["seed"],
                    cfg.get("text_source", "oracle"))
    if texts is not None:
        name += " (given texts)"
        preds = None  # the stored predictions were made from the training text source
    return ExplorerRun(name, cfg["fold"], run.model, cfg["classes"], run.manifest, run.test, preds, cfg)


def run_name(model: str, config_hash: str, recipe: str, seed: int, text_source: str = "oracle") -> str:
    """How the explorer names a run: ``model hash recipe sSEED``, plus the text source when
    the model read ASR text (so an oracle and an ASR run of one model are told apart)."""
    name = f"{model} {str(config_hash)[:8]} {recipe} s{seed}"
    return name if text_source in ("oracle", "", None) or pd.isna(text_source) else f"{name} {text_source}"


def runs_from_results(results: pd.DataFrame, manifest: Manifest | None = None,
                      cache: Any = None) -> dict[str, dict[str, Callable[[], ExplorerRun]]]:
    """Lazy loaders ``{run name: {fold: () -> ExplorerRun}}`` for the rows of a results table
    (``workbench.training.read_results``); a run is loaded only when chosen."""
    out: dict[str, dict[str, Callable[[], ExplorerRun]]] = {}
    for r in results.sort_values(["model", "fold", "seed"]).itertuples():
        name = run_name(r.model, r.config_hash, getattr(r, STORED_NAMES["recipe"]), r.seed, getattr(r, "text_source", "oracle"))
        out.setdefault(name, {})[str(r.fold)] = (lambda d=r.run_dir: run_from_dir(d, manifest, cache))
    return out


def pick_utterances(run: ExplorerRun, per_emotion: int = 1, ids: Sequence[str] | None = None) -> list[str]:
    """``ids`` if given (checked against the run), else the first ``per_emotion`` utterances
    (by id) of each true label among the run's test utterances."""
    if ids is not None:
        unknown = [i for i in ids if i not in run.ids]
        if unknown:
            raise ValueError(f"utterances {unknown} are not in the test fold {run.fold!r} of {run.run!r}")
        return list(ids)
    p = run.predictions().sort_values("utt_id")
    return [i for _, g in p.groupby("label", sort=True) for i in g["utt_id"].head(per_emotion)]


def attention_agreement(run: ExplorerRun, name: str | None = None, head: int | str = "mean",
                        forced: Mapping[str, Sequence[tuple[float, float] | None]] | None = None,
                        ids: Sequence[str] | None = None, tolerance: float = 0.1) -> pd.DataFrame:
    """Per-word agreement scores (:func:`workbench.evaluation.alignment.utterance_scores`) of
    map ``name`` of ``run`` on ``ids`` (default all), with the uniform baseline and, where
    ``forced`` has the utterance, the forced-alignment baseline. Columns add ``id``, ``label``."""
    parts = []
    for i in ids if ids is not None else run.ids:
        r = run.infer(i)
        map_name = name or run.maps()[0]
        view = r.view(map_name, head)
        utt = run.manifest[i]
        df = utterance_scores({"learned": view.weights}, view.words, reference_timings(utt), view.frame_seconds,
                              forced=(forced or {}).get(i), tolerance=tolerance)
        df.insert(0, "label", utt.label)
        df.insert(0, "id", i)
        parts.append(df)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _show(out: Any, obj: Any) -> None:
    """Replace the contents of Output widget ``out`` with ``obj`` when a kernel runs (no-op in
    plain Python, where a figure's repr would go to stdout).

    The outputs are set as widget state (``outputs``/``append_display_data``) rather than by
    capturing ``display`` in ``with out:``: capturing with ``clear_output(wait=True)`` hung
    headless papermill runs, state updates need no frontend at all.
    """
    from IPython import get_ipython

    if get_ipython() is None:
        return
    if obj is None:
        out.outputs = ()
    elif isinstance(obj, go.Figure):
        # A plotly figure displays itself through _ipython_display_, so append_display_data
        # would store an empty output: hand JupyterLab the plotly mimetype directly.
        out.outputs = (
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"application/vnd.plotly.v1+json": json.loads(obj.to_json()), "text/plain": "Figure"},
            },
        )
    else:
        out.outputs = ()
        out.append_display_data(obj)


class AttentionExplorer:
    """Widgets around :class:`ExplorerRun` objects.

    ``runs`` maps run name -> fold -> an ExplorerRun or a zero-argument loader returning one
    (see :func:`runs_from_results`). ``explorer.widget`` is the VBox to display (or display
    the explorer itself); ``explorer.figure`` the current figure, ``explorer.view`` its map.
    """

    def __init__(self, runs: Mapping[str, Mapping[str, ExplorerRun | Callable[[], ExplorerRun]]], sr: int = 16000):
        import ipywidgets as w

        if not runs or not all(runs.values()):
            raise ValueError("AttentionExplorer needs at least one run with at least one fold")
        self._runs = {r: dict(f) for r, f in runs.items()}
        self.sr = sr
        self.figure: go.Figure | None = None
        self.view: AttentionView | None = None
        self.result: UtteranceResult | None = None
        self._busy = False
        lay = w.Layout(width="260px")
        self.run_dd = w.Dropdown(description="run", options=list(self._runs), layout=w.Layout(width="420px"))
        self.fold_dd = w.Dropdown(description="fold", layout=lay)
        self.label_dd = w.Dropdown(description="label", layout=lay)
        self.correct_dd = w.Dropdown(description="prediction", options=[ALL, "correct", "incorrect"], layout=lay)
        self.speaker_dd = w.Dropdown(description="speaker", layout=lay)
        self.utt_dd = w.Dropdown(description="utterance", layout=w.Layout(width="520px"))
        self.map_dd = w.Dropdown(description="map", layout=w.Layout(width="320px"))
        self.head_dd = w.Dropdown(description="head", layout=lay)
        self.background_tb = w.ToggleButtons(options=["waveform", "spectrogram", "none"], value="waveform",
                                             description="above", style={"button_width": "90px"})
        self.word_dd = w.Dropdown(description="word", layout=lay)
        self.threshold_sl = w.FloatSlider(value=0.5, min=0.1, max=1.0, step=0.05, description="mass",
                                          readout_format=".2f", layout=lay)
        self.play_btn = w.Button(description="play utterance", icon="play")
        self.play_word_btn = w.Button(description="play word's attended audio", icon="play",
                                      layout=w.Layout(width="230px"))
        self.info = w.HTML()
        self.span_label = w.HTML()
        self.fig_out = w.Output()
        self.audio_out = w.Output()
        self.widget = w.VBox([
            w.HBox([self.run_dd, self.fold_dd]),
            w.HBox([self.label_dd, self.correct_dd, self.speaker_dd]),
            w.HBox([self.utt_dd, self.play_btn]),
            w.HBox([self.map_dd, self.head_dd, self.background_tb]),
            w.HBox([self.word_dd, self.threshold_sl, self.play_word_btn, self.span_label]),
            self.info, self.fig_out, self.audio_out,
        ])
        self.run_dd.observe(lambda _: self._on_run(), "value")
        self.fold_dd.observe(lambda _: self._on_fold(), "value")
        for dd in (self.label_dd, self.correct_dd, self.speaker_dd):
            dd.observe(lambda _: self._on_filter(), "value")
        self.utt_dd.observe(lambda _: self._on_utterance(), "value")
        for c in (self.map_dd, self.head_dd, self.background_tb):
            c.observe(lambda _: self._on_map(), "value")
        for c in (self.word_dd, self.threshold_sl):
            c.observe(lambda _: self._on_word(), "value")
        self.play_btn.on_click(lambda _: self.play_utterance())
        self.play_word_btn.on_click(lambda _: self.play_word())
        self._on_run()

    # ---------------------------------------------------------------- state
    @property
    def run(self) -> ExplorerRun:
        """The selected run (loaded on first use)."""
        folds = self._runs[self.run_dd.value]
        item = folds[self.fold_dd.value]
        if not isinstance(item, ExplorerRun):
            item = folds[self.fold_dd.value] = item()
        return item

    def _set(self, widget: Any, options: Sequence[Any], value: Any = None) -> None:
        """Replace a dropdown's options without firing a cascade; keep the value if still valid."""
        keep = widget.value
        self._busy = True
        try:
            widget.options = list(options)
            values = [o[1] if isinstance(o, tuple) else o for o in options]
            widget.value = value if value in values else (keep if keep in values else (values[0] if values else None))
        finally:
            self._busy = False

    def _on_run(self) -> None:
        self._set(self.fold_dd, list(self._runs[self.run_dd.value]))
        self._on_fold()

    def _on_fold(self) -> None:
        if self._busy:
            return
        p = self.run.predictions()
        self._set(self.label_dd, [ALL] + sorted(p["label"].unique()))
        self._set(self.speaker_dd, [ALL] + sorted(p["speaker"].unique()))
        self._set(self.map_dd, self.run.maps())
        self._on_filter()

    def filtered(self) -> pd.DataFrame:
        """Predictions of the selected run that pass the label/correct/speaker filters."""
        p = self.run.predictions()
        if self.label_dd.value not in (None, ALL):
            p = p[p["label"] == self.label_dd.value]
        if self.speaker_dd.value not in (None, ALL):
            p = p[p["speaker"] == self.speaker_dd.value]
        if self.correct_dd.value == "correct":
            p = p[p["correct"]]
        elif self.correct_dd.value == "incorrect":
            p = p[~p["correct"]]
        return p

    def _on_filter(self) -> None:
        if self._busy:
            return
        p = self.filtered()
        options = [(f"{r.utt_id}  [{r.label} -> {r.pred}]", r.utt_id) for r in p.itertuples()]
        self._set(self.utt_dd, options)
        self._on_utterance()

    def _on_utterance(self) -> None:
        if self._busy:
            return
        if self.utt_dd.value is None:
            self.result, self.view, self.figure = None, None, None
            self.info.value = "<i>no utterance matches the filters</i>"
            return
        self.result = self.run.infer(self.utt_dd.value)
        self.info.value = self._info_html(self.result)
        self._on_map(redraw_words=True)

    def _on_map(self, redraw_words: bool = True) -> None:
        if self._busy or self.result is None or self.map_dd.value is None:
            return
        r = self.result
        heads = n_heads(r.attentions[self.map_dd.value], r.attention_info[self.map_dd.value])
        self._set(self.head_dd, ["mean"] + list(range(heads)) if heads > 1 else [0] if heads == 1 else ["mean"])
        self.view = r.view(self.map_dd.value, self.head_dd.value)
        if redraw_words:
            self._set(self.word_dd, [(f"{i}: {wd}", i) for i, wd in enumerate(self.view.words)])
        self._on_word()

    def _on_word(self) -> None:
        if self._busy or self.result is None or self.view is None:
            return
        word = self.word_dd.value
        span = None
        if word is not None and self.view.weights[word].sum() > 0:
            span = word_attention_span(self.view, word, self.threshold_sl.value)
            self.span_label.value = f"attends to {span[0]:.2f}-{span[1]:.2f} s"
        else:
            self.span_label.value = ""
        self.figure = self.run.figure(self.result.id, self.map_dd.value, self.head_dd.value, self.background_tb.value,
                                      highlight=word if span is not None else None,
                                      threshold=self.threshold_sl.value)
        _show(self.fig_out, self.figure)

    def _info_html(self, r: UtteranceResult) -> str:
        """True label, prediction, the text the model saw (and the oracle text when it read
        ASR text) and one bar per class probability."""
        utt = self.run.manifest[r.id]
        ok = "correct" if r.label == r.pred else "wrong"
        bars = "".join(
            f"<tr><td>{html.escape(c)}</td><td><div style='background:{'#2a7' if c == r.pred else '#999'};"
            f"width:{int(round(150 * p))}px;height:10px'></div></td><td>{p:.3f}</td></tr>"
            for c, p in zip(self.run.classes, r.probs))
        oracle = (f"<br>oracle text: <i>{html.escape(oracle_text(utt))}</i>" if oracle_text(utt) != utt.text else "")
        return (f"<b>{html.escape(r.id)}</b> ({html.escape(utt.speaker)}): true <b>{r.label}</b>, "
                f"predicted <b>{r.pred}</b> ({ok})<br>text the model saw: <i>{html.escape(' '.join(r.words))}</i>"
                f"{oracle}<table style='font-size:11px'>{bars}</table>")

    # ---------------------------------------------------------------- audio
    def probabilities(self) -> pd.Series:
        """Class probabilities of the selected utterance."""
        if self.result is None:
            return pd.Series(dtype=float)
        return pd.Series(self.result.probs, index=self.run.classes, name="probability")

    def utterance_audio(self) -> np.ndarray:
        return load_audio(self.run.manifest[self.result.id], self.sr) if self.result else np.zeros(0, np.float32)

    def word_audio(self) -> tuple[tuple[float, float], np.ndarray]:
        """(span, samples) of the audio the selected word attends to."""
        if self.view is None or self.word_dd.value is None:
            raise ValueError("no word selected")
        span = word_attention_span(self.view, self.word_dd.value, self.threshold_sl.value)
        return span, audio_segment(self.utterance_audio(), self.sr, span)

    def play_utterance(self) -> None:
        from IPython.display import Audio

        if self.result is not None:
            _show(self.audio_out, Audio(self.utterance_audio(), rate=self.sr, autoplay=True))

    def play_word(self) -> None:
        from IPython.display import Audio

        if self.view is not None and self.word_dd.value is not None:
            _, seg = self.word_audio()
            _show(self.audio_out, Audio(seg, rate=self.sr, autoplay=True))

    def static_html(self) -> str:
        """The current view without widgets: the utterance's line and the figure (a plotly div
        that needs plotly.js on the page, as an exported page has), or a note when none is drawn."""
        from plotly.io import to_html

        if self.figure is None:
            return f"<div>{self.info.value or 'no utterance selected'}</div>"
        figure = to_html(self.figure, include_plotlyjs=False, include_mathjax=False, full_html=False,
                         default_width="100%", validate=False)
        return (f"<div><p><i>The attention explorer's view when the notebook ran (a static copy: the "
                f"controls need a running kernel).</i></p>{self.info.value}{figure}</div>")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget for a running frontend, and beside it a static ``text/html`` copy of its
        current view, which is what a page without a widget manager (an HTML export, a notebook
        viewer) shows instead of a blank placeholder."""
        bundle = dict(self.widget._repr_mimebundle_(**kwargs))
        bundle["text/html"] = self.static_html()
        return bundle
