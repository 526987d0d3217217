"""Plotly figures and audio players for looking at a corpus (notebook 01; the attention explorer
of notebook 06 is :mod:`workbench.viz.explorer`).

Figures are returned, not shown, so notebooks decide how to display them and tests can check
their traces.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.corpus.manifest import Manifest, Utterance
from workbench.corpus.summary import length_table, vad_table
from workbench.features.audio_io import load_audio

_HEIGHT = 380  # keep figures small enough for a notebook page and for nbval-free HTML exports


def counts_figure(manifest: Manifest, by: str = "session", color: str = "label") -> go.Figure:
    """Stacked bars: utterances per ``by`` value, split by ``color``."""
    df = manifest.to_frame().groupby([by, color]).size().rename("utterances").reset_index()
    fig = px.bar(df, x=by, y="utterances", color=color, title=f"Utterances by {by} and {color}")
    fig.update_layout(height=_HEIGHT, barmode="stack")
    return fig


def lengths_figure(manifest: Manifest) -> go.Figure:
    """Histograms of duration (s) and word count, coloured by label."""
    df = length_table(manifest)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("duration (s)", "words per utterance"))
    for i, label in enumerate(sorted(df["label"].unique())):
        part = df[df["label"] == label]
        color = px.colors.qualitative.Plotly[i % 10]
        fig.add_trace(go.Histogram(x=part["duration"], name=label, legendgroup=label, marker_color=color, opacity=0.7), 1, 1)
        fig.add_trace(
            go.Histogram(x=part["words"], name=label, legendgroup=label, showlegend=False, marker_color=color, opacity=0.7),
            1,
            2,
        )
    fig.update_layout(barmode="overlay", height=_HEIGHT, title="Length distributions by label")
    return fig


def vad_figure(manifest: Manifest) -> go.Figure:
    """Box plots of valence, arousal and dominance per label."""
    df = vad_table(manifest).melt(id_vars=["id", "label"], var_name="dimension", value_name="rating")
    fig = px.box(df, x="label", y="rating", color="dimension", title="V/A/D ratings by label")
    fig.update_layout(height=_HEIGHT)
    return fig


def waveform_figure(utt: Utterance, sr: int = 16000, max_points: int = 4000) -> go.Figure:
    """Waveform (decimated to ``max_points`` for the browser) above a log-mel spectrogram,
    with the reference word spans (if any) drawn over the spectrogram."""
    import librosa

    y = load_audio(utt, sr)
    step = max(1, len(y) // max_points)
    t = np.arange(0, len(y), step) / sr
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=400, hop_length=160, n_mels=64), ref=np.max)
    frames_t = np.arange(mel.shape[1]) * 160 / sr
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.3, 0.7], vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=t, y=y[::step], mode="lines", name="waveform", line=dict(width=1)), 1, 1)
    fig.add_trace(go.Heatmap(x=frames_t, z=mel, colorscale="Viridis", showscale=False, name="log-mel"), 2, 1)
    for word, start, end in utt.words or []:
        fig.add_vrect(x0=start, x1=end, line_width=1, line_color="white", fillcolor="white", opacity=0.08, row=2, col=1)
        fig.add_annotation(x=(start + end) / 2, y=60, text=word, showarrow=False, font=dict(color="white", size=10), row=2, col=1)
    fig.update_layout(height=_HEIGHT + 60, title=f"{utt.id} ({utt.label}): {utt.text}", showlegend=False)
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    return fig


def audio_player(utt: Utterance, sr: int = 16000):
    """An IPython audio widget for one utterance (plays in JupyterLab; inert headless)."""
    from IPython.display import Audio

    return Audio(load_audio(utt, sr), rate=sr)


def pick_examples(manifest: Manifest, per_label: int = 1, seed: int = 0) -> list[Utterance]:
    """A few utterances per label (seeded), preferring ones with word timings."""
    rng = np.random.default_rng(seed)
    chosen = []
    df = manifest.to_frame()
    df["has_words"] = df["words"].notna()
    for label in sorted(df["label"].unique()):
        part = df[df["label"] == label].sort_values(["has_words", "id"], ascending=[False, True])
        pool = part[part["has_words"]] if part["has_words"].any() else part
        idx = rng.choice(len(pool), size=min(per_label, len(pool)), replace=False)
        chosen += [manifest[i] for i in pool.iloc[sorted(idx)]["id"]]
    return chosen


def describe(manifest: Manifest) -> pd.Series:
    """Headline numbers: utterances, speakers, sessions, dialogs, hours of audio. Counts stay
    integers (an object Series: a float one would print ``utterances 199.000``)."""
    df = manifest.to_frame()
    return pd.Series(
        dtype=object,
        data={
            "utterances": len(df),
            "speakers": df["speaker"].nunique(),
            "sessions": df["session"].nunique(),
            "dialogs": df["dialog"].nunique(),
            "hours": round(float(df["duration"].sum()) / 3600, 3),
            "with word timings": int(df["words"].notna().sum()),
        }
    )
