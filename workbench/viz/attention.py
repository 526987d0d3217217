"""Word-by-time attention heatmaps: any model's named maps placed on a time axis in seconds.

Every model returns ``ModelOutput.attentions`` (name -> tensor) with an ``AttentionInfo`` per
map naming its axes and the seconds per step of each time axis (conv strides and pooling
included). :func:`attention_view` turns one map, one head (or the head mean) and one batch row
into an :class:`AttentionView`: a (words, frames) matrix plus the frame period, whatever the
map's orientation (``word_frame``/``cross_text_audio`` are (word, frame),
``cross_audio_text`` is (frame, word) and is transposed; frame-only maps such as AMH's
``hop{k}_audio`` or the unimodal ``frame_pool`` become one row). :func:`attention_figure`
draws it under the waveform or spectrogram on the same seconds axis, with the reference word
spans outlined over it.

Frame i of a map with period ``s`` covers ``[i * s, (i + 1) * s)``.

>>> v = AttentionView(np.array([[0.1, 0.7, 0.2, 0.0], [0.0, 0.0, 0.5, 0.5]]), 0.04, ["hi", "there"], "m", 0)
>>> frames_to_seconds(4, 0.04).round(2).tolist()
[0.02, 0.06, 0.1, 0.14]
>>> word_attention_span(v, 0, threshold=0.6)
(0.04, 0.08)
>>> word_attention_span(v, 1, threshold=0.9)
(0.08, 0.16)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.models.outputs import AttentionInfo

Head = int | Literal["mean"]
Span = tuple[float, float]
Background = Literal["waveform", "spectrogram", "none"]

_HEIGHT = 420  # with the waveform/spectrogram panel; modest so several fit a notebook page
_MAX_POINTS = 3000  # waveform points sent to the browser


@dataclass(frozen=True)
class AttentionView:
    """One attention matrix ready to draw or score.

    ``weights`` (W, T): row i is word i of ``words`` (a single row named ``"(utterance)"``
    for frame-only maps), column j is frame j covering ``[j * frame_seconds, (j + 1) *
    frame_seconds)`` seconds; padding already removed. ``head`` is the head index or
    ``"mean"`` (mean over heads).
    """

    weights: np.ndarray
    frame_seconds: float
    words: list[str]
    name: str
    head: Head
    description: str = ""

    @property
    def n_frames(self) -> int:
        return int(self.weights.shape[1])

    @property
    def duration(self) -> float:
        """Seconds covered by the map's frames."""
        return self.n_frames * self.frame_seconds


def frames_to_seconds(n_frames: int, frame_seconds: float, where: Literal["start", "center", "end"] = "center") -> np.ndarray:
    """Time in seconds of each of ``n_frames`` frames of period ``frame_seconds``: its start,
    centre (default, where a heatmap cell is drawn) or end.

    >>> frames_to_seconds(3, 0.01, "start").tolist()
    [0.0, 0.01, 0.02]
    """
    if frame_seconds <= 0:
        raise ValueError(f"frame_seconds must be > 0, got {frame_seconds}")
    offset = {"start": 0.0, "center": 0.5, "end": 1.0}[where]
    return (np.arange(n_frames) + offset) * frame_seconds


def time_axis(info: AttentionInfo) -> str | None:
    """The name of the map's single time axis (one with a ``frame_seconds`` entry), or None
    when it has none or several (e.g. audio self-attention, frame x frame)."""
    timed = [a for a in info.axes if a in info.frame_seconds]
    if len(timed) != 1 or info.axes.count(timed[0]) != 1:
        return None
    return timed[0]


def viewable_maps(attention_info: Mapping[str, AttentionInfo]) -> list[str]:
    """Names of the maps that can be drawn against time: one time axis and at most one word
    axis (word x frame in either orientation, or frame-only). Sorted, cross maps first."""
    ok = []
    for name, info in attention_info.items():
        t = time_axis(info)
        others = [a for a in info.axes if a not in ("batch", "head", t)]
        if t is not None and others in ([], ["word"]):
            ok.append(name)
    return sorted(ok, key=lambda n: (not ("word" in attention_info[n].axes), n))


def n_heads(attention: np.ndarray | object, info: AttentionInfo) -> int:
    """Heads of a map (1 when it has no head axis)."""
    return int(np.shape(attention)[info.axes.index("head")]) if "head" in info.axes else 1


def _numpy(x: object) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()  # type: ignore[union-attr]
    return np.asarray(x, dtype=np.float64)


def attention_view(
    attentions: Mapping[str, object],
    attention_info: Mapping[str, AttentionInfo],
    name: str,
    head: Head = "mean",
    index: int = 0,
    words: Sequence[str] | None = None,
    n_frames: int | None = None,
) -> AttentionView:
    """Row ``index`` of map ``name`` as an :class:`AttentionView` (words x frames).

    ``head`` picks one head or ``"mean"``. ``words`` are the words the model saw (their
    count trims padded word rows); ``n_frames`` the real frames on the map's time axis
    (default: up to the last frame with any weight, since padded frames get zero weight).
    """
    if name not in attentions or name not in attention_info:
        raise ValueError(f"no attention map {name!r}; this model has {sorted(attentions)}")
    info = attention_info[name]
    t_axis = time_axis(info)
    if name not in viewable_maps({name: info}) or t_axis is None:
        raise ValueError(f"map {name!r} with axes {info.axes} has no single time axis to draw; "
                         f"viewable maps: {viewable_maps(attention_info)}")
    w = _numpy(attentions[name])
    if w.ndim != len(info.axes):
        raise ValueError(f"map {name!r} has shape {w.shape} but its info names axes {info.axes}")
    axes = list(info.axes)
    if "batch" in axes:
        b = axes.index("batch")
        if not 0 <= index < w.shape[b]:
            raise ValueError(f"index {index} out of range for a batch of {w.shape[b]}")
        w = np.take(w, index, axis=b)
        axes.pop(b)
    if "head" in axes:
        h = axes.index("head")
        if head == "mean":
            w = w.mean(axis=h)
        elif isinstance(head, (int, np.integer)) and 0 <= head < w.shape[h]:
            w = np.take(w, int(head), axis=h)
        else:
            raise ValueError(f"head must be 'mean' or an index in [0, {w.shape[h]}), got {head!r}")
        axes.pop(h)
    if "word" in axes:
        if axes.index("word") != 0:
            w = w.T  # (frame, word) maps such as cross_audio_text: show words as rows
    else:
        w = w[None, :]
    if words is not None and "word" in info.axes:
        if len(words) > w.shape[0]:
            raise ValueError(f"{len(words)} words given but map {name!r} has only {w.shape[0]} word rows")
        w = w[: len(words)]
    row_words = list(words) if words is not None and "word" in info.axes else (
        [f"w{i}" for i in range(w.shape[0])] if "word" in info.axes else ["(utterance)"])
    if n_frames is None:
        nz = np.flatnonzero(np.abs(w).sum(0) > 0)
        n_frames = int(nz[-1]) + 1 if len(nz) else w.shape[1]
    if not 0 < n_frames <= w.shape[1]:
        raise ValueError(f"n_frames {n_frames} out of range (map has {w.shape[1]} frames)")
    return AttentionView(w[:, :n_frames], float(info.frame_seconds[t_axis]), row_words, name, head, info.description)


def word_attention_span(view: AttentionView | np.ndarray, word_index: int, threshold: float = 0.5,
                        frame_seconds: float | None = None) -> Span:
    """(start_s, end_s) of the audio word ``word_index`` attends to: the shortest run of
    consecutive frames holding at least ``threshold`` (0-1] of the word's attention mass
    (the earliest such run on ties). A raw (W, T) array needs ``frame_seconds``."""
    if isinstance(view, AttentionView):
        weights, fs = view.weights, view.frame_seconds
    else:
        if frame_seconds is None:
            raise ValueError("word_attention_span: a raw weight array needs frame_seconds")
        weights, fs = np.asarray(view, dtype=np.float64), frame_seconds
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if not 0 <= word_index < weights.shape[0]:
        raise ValueError(f"word_index {word_index} out of range for {weights.shape[0]} words")
    row = np.clip(np.asarray(weights[word_index], dtype=np.float64), 0.0, None)
    total = row.sum()
    if total <= 0:
        raise ValueError(f"word {word_index} has no attention mass")
    cs = np.concatenate([[0.0], np.cumsum(row / total)])
    # For each end frame r, the latest start l with mass(l..r) >= threshold (cs is monotone).
    target = threshold - 1e-9
    ends = np.arange(1, len(cs))
    starts = np.searchsorted(cs, cs[ends] - target, side="right") - 1
    valid = starts >= 0
    lengths = np.where(valid, ends - starts, np.iinfo(np.int64).max)
    best = int(np.argmin(lengths))
    first, last = int(starts[best]), int(ends[best])  # frames [first, last)
    return round(first * fs, 6), round(last * fs, 6)


def audio_segment(wave: np.ndarray, sr: int, span: Span) -> np.ndarray:
    """Samples of ``wave`` between ``span`` seconds (clipped to the signal; at least one sample)."""
    a = min(max(int(round(span[0] * sr)), 0), max(len(wave) - 1, 0))
    b = min(max(int(round(span[1] * sr)), a + 1), len(wave))
    return wave[a:b]


def _span_outlines(spans: Sequence[Span | None], rows: Sequence[int]) -> tuple[list, list]:
    """x, y of closed rectangles (one per span, rows i-0.45..i+0.45) separated by None."""
    xs: list = []
    ys: list = []
    for (span, i) in zip(spans, rows):
        if span is None:
            continue
        s, e = span
        xs += [s, e, e, s, s, None]
        ys += [i - 0.45, i - 0.45, i + 0.45, i + 0.45, i - 0.45, None]
    return xs, ys


def attention_figure(
    view: AttentionView,
    wave: np.ndarray | None = None,
    sr: int = 16000,
    background: Background = "waveform",
    reference: Sequence[Span | None] | None = None,
    highlight: int | None = None,
    threshold: float = 0.5,
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """Heatmap of ``view`` (words on y, time in seconds on x) under the audio.

    ``wave`` (samples at ``sr``) is drawn above as a waveform or log-mel spectrogram
    (``background``; ``"none"`` or no ``wave`` gives the heatmap alone). ``reference`` gives
    one true (start_s, end_s) or None per word of ``view``: drawn as white outlines (trace
    ``"reference spans"``). ``highlight`` outlines the audio that word attends to
    (:func:`word_attention_span` at ``threshold``; trace ``"attended span"``). Hover shows
    word, time and weight.
    """
    w = view.weights
    n_words, n_frames = w.shape
    t = frames_to_seconds(n_frames, view.frame_seconds)
    duration = max(view.duration, len(wave) / sr if wave is not None else 0.0)
    top = wave is not None and background != "none"
    if top:
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.28, 0.72], vertical_spacing=0.03)
        _add_background(fig, wave, sr, background)
        row = dict(row=2, col=1)
    else:
        fig = go.Figure()
        row = {}
    labels = [f"{i}: {word}" for i, word in enumerate(view.words)]
    custom = np.broadcast_to(np.array(view.words, dtype=object)[:, None], w.shape)
    fig.add_trace(
        go.Heatmap(
            z=w, x=t, y=list(range(n_words)), customdata=custom, colorscale="Viridis", name="attention",
            colorbar=dict(title="weight", len=0.7 if top else 1.0, y=0.36 if top else 0.5, thickness=12),
            hovertemplate="word: %{customdata}<br>time: %{x:.3f} s<br>weight: %{z:.4f}<extra></extra>",
        ),
        **row,
    )
    if reference is not None:
        if len(reference) != n_words:
            raise ValueError(f"reference has {len(reference)} spans for {n_words} words")
        xs, ys = _span_outlines(reference, range(n_words))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="reference spans", line=dict(color="white", width=1.5),
                                 hoverinfo="skip"), **row)
    if highlight is not None:
        span = word_attention_span(view, highlight, threshold)
        xs, ys = _span_outlines([span], [highlight])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="attended span",
                                 line=dict(color="red", width=2, dash="dot"), hoverinfo="skip"), **row)
    head = "mean of heads" if view.head == "mean" else f"head {view.head}"
    fig.update_yaxes(tickvals=list(range(n_words)), ticktext=labels, autorange="reversed", title_text="word", **row)
    fig.update_xaxes(range=[0, duration], title_text="time (s)", **row)
    fig.update_layout(
        height=height or (_HEIGHT if top else 300) + 8 * max(0, n_words - 10),
        title=dict(text=title or f"{view.name} ({head}, {view.frame_seconds * 1000:g} ms frames)", font=dict(size=13)),
        margin=dict(l=10, r=10, t=40, b=40), showlegend=False,
    )
    return fig


def _add_background(fig: go.Figure, wave: np.ndarray, sr: int, background: Background) -> None:
    if background == "waveform":
        step = max(1, len(wave) // _MAX_POINTS)
        fig.add_trace(go.Scatter(x=np.arange(0, len(wave), step) / sr, y=wave[::step], mode="lines", name="waveform",
                                   line=dict(width=1), hoverinfo="skip"), row=1, col=1)
        fig.update_yaxes(showticklabels=False, row=1, col=1)
    elif background == "spectrogram":
        import librosa

        mel = librosa.power_to_db(librosa.feature.melspectrogram(y=wave, sr=sr, n_fft=400, hop_length=160, n_mels=48),
                                  ref=np.max)
        fig.add_trace(go.Heatmap(z=mel, x=frames_to_seconds(mel.shape[1], 160 / sr, "start"), colorscale="Greys",
                                 reversescale=True, showscale=False, name="log-mel", hoverinfo="skip"), row=1, col=1)
        fig.update_yaxes(showticklabels=False, title_text="mel", row=1, col=1)
    else:
        raise ValueError(f"background must be 'waveform', 'spectrogram' or 'none', got {background!r}")
