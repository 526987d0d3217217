"""Attention heatmaps and the explorer: frames -> seconds for every registered model's maps,
figure axes and traces, and the widget explorer built headless."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import soundfile as sf
import torch

from workbench.corpus.manifest import Manifest
from workbench.models import create_model, list_models
from workbench.models.outputs import AttentionInfo
from workbench.testing.dummies import make_utterance
from workbench.training.data import SERDataset
from workbench.viz.attention import (
    AttentionView,
    attention_figure,
    attention_view,
    audio_segment,
    frames_to_seconds,
    viewable_maps,
    word_attention_span,
)

SECONDS = 1.0  # every input of the mapping test lasts one second

# Smaller configs for the slow defaults, plus variants whose downsampling differs from the default.
CONFIGS = {
    "cma_raw": dict(conv_channels=(8, 8, 8), lstm_hidden=8, text_channels=8, dim=8, heads=2, ff_dim=8),
    "cma_spec": dict(conv_channels=(8, 8, 8), lstm_hidden=8, text_channels=8, dim=8, heads=2, ff_dim=8),
}
VARIANTS = [
    ("cma_raw", dict(conv_channels=(8, 8, 8), conv_strides=(2, 1, 1), pool_sizes=(4, 4, 4), lstm_hidden=8,
                     text_channels=8, dim=8, heads=2, ff_dim=8)),
    ("mcsan", dict(hidden=16, heads=2, ff_dim=16, audio_frame_seconds=0.04)),  # features pooled 4x
    ("xu_alignment", dict(hidden=8, heads=2, attn_dim=4, frame_seconds=0.04)),
    ("amh_at", dict(audio_frame_seconds=0.04)),
]


def _one_second_batch(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Inputs lasting SECONDS for the model's frame periods: audio frames at its audio period,
    the waveform at its sample rate, video at its video period; five words."""
    c = model.config
    audio_period = getattr(c, "frame_seconds", None) or getattr(c, "audio_frame_seconds", 0.01)
    if getattr(c, "front_end", None) == "spectrogram":
        audio_period = c.audio_frame_seconds
    n_audio = int(round(SECONDS / audio_period))
    b: dict[str, torch.Tensor] = {}
    g = torch.Generator().manual_seed(0)
    if "audio" in model.inputs:
        b["audio"] = torch.randn(1, n_audio, c.audio_dim, generator=g)
    if "waveform" in model.inputs:
        b["waveform"] = torch.randn(1, int(SECONDS * c.sample_rate), generator=g)
    if "text" in model.inputs:
        b["text"] = torch.randn(1, 5, c.text_dim, generator=g)
    if "video" in model.inputs:  # a model without a video frame period reads descriptors at 2 per second
        video_period = getattr(c, "video_frame_seconds", None) or 0.5
        b["video"] = torch.randn(1, int(round(SECONDS / video_period)), c.video_dim, generator=g)
    if "prosody" in model.inputs:  # prosody frames at the audio period unless the model says otherwise
        prosody_period = getattr(c, "prosody_frame_seconds", None) or audio_period
        b["prosody"] = torch.randn(1, int(round(SECONDS / prosody_period)), c.prosody_dim, generator=g)
    for k in list(b):
        b[f"{k}_mask"] = torch.ones(b[k].shape[:2], dtype=torch.bool)
    if "word_spans" in model.inputs:
        edges = torch.linspace(0, n_audio, 6).round().long()
        b["word_spans"] = torch.stack([edges[:-1], edges[1:]], -1)[None]
    return b


def _check_time_axes(name: str, config: dict) -> int:
    model = create_model(name, **config).eval()
    with torch.no_grad():
        out = model(**_one_second_batch(model))
    checked = 0
    for map_name, info in out.attention_info.items():
        for axis, period in info.frame_seconds.items():
            length = out.attentions[map_name].shape[info.axes.index(axis)]
            # Conv/pool length formulas may drop or add at most one output frame at the edges.
            assert abs(length * period - SECONDS) <= period + 1e-9, (name, map_name, axis, length, period)
            checked += 1
        if map_name in viewable_maps(out.attention_info):
            view = attention_view(out.attentions, out.attention_info, map_name, "mean")
            assert abs(view.duration - SECONDS) <= view.frame_seconds + 1e-9
            assert view.weights.shape[0] == (5 if "word" in info.axes else 1)
    return checked


@pytest.mark.parametrize("name", list_models())
def test_every_registered_models_maps_span_the_input_duration(name):
    _check_time_axes(name, CONFIGS.get(name, {}))


@pytest.mark.parametrize("name,config", VARIANTS, ids=[v[0] + "-variant" for v in VARIANTS])
def test_downsampling_variants_keep_time_in_seconds(name, config):
    assert _check_time_axes(name, config) > 0


def test_models_with_time_maps_are_covered():
    """The registry test above is not vacuous: the attention models do expose time maps."""
    with_maps = {"xu_alignment", "xu_alignment_hard", "mcsan", "cma_raw", "cma_spec", "amh", "amh_at", "unimodal_audio"}
    assert with_maps <= set(list_models())
    assert _check_time_axes("mcsan", {}) >= 3  # cross both ways + self audio (two frame axes)


def _info(axes, fs=0.04):
    return AttentionInfo(axes, {"frame": fs})


def test_attention_view_orientation_heads_and_trimming():
    w = torch.zeros(2, 2, 6, 3)  # (batch, head, frame, word) like cross_audio_text
    w[1, 0, :4, 0] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    w[1, 1, :4, 0] = torch.tensor([0.0, 1.0, 0.0, 0.0])
    w[1, :, :4, 1] = 0.25
    maps, info = {"m": w}, {"m": _info(("batch", "head", "frame", "word"))}
    v = attention_view(maps, info, "m", head=1, index=1, words=["a", "b"])
    assert v.weights.shape == (2, 4)  # words rows, padded frames (all-zero) trimmed
    assert v.weights[0].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert v.frame_seconds == 0.04 and v.words == ["a", "b"]
    mean = attention_view(maps, info, "m", head="mean", index=1, words=["a", "b"], n_frames=5)
    assert mean.weights.shape == (2, 5) and mean.weights[0, :2].tolist() == [0.5, 0.5]
    frame_only = attention_view({"f": torch.tensor([[0.2, 0.8, 0.0]])}, {"f": _info(("batch", "frame"), 0.01)}, "f")
    assert frame_only.words == ["(utterance)"]
    np.testing.assert_allclose(frame_only.weights, [[0.2, 0.8]], rtol=1e-6)
    with pytest.raises(ValueError, match="head"):
        attention_view(maps, info, "m", head=2)
    with pytest.raises(ValueError, match="no single time axis"):
        attention_view({"s": torch.ones(1, 4, 4)}, {"s": _info(("batch", "frame", "frame"))}, "s")
    assert viewable_maps({"s": _info(("batch", "frame", "frame")), "m": info["m"],
                          "f": _info(("batch", "frame")), "t": AttentionInfo(("batch", "word"))}) == ["m", "f"]


def test_word_attention_span_is_the_shortest_run_holding_the_mass():
    w = np.array([[0.05, 0.1, 0.5, 0.3, 0.05, 0.0]])
    assert word_attention_span(w, 0, 0.5, frame_seconds=0.1) == (0.2, 0.3)
    assert word_attention_span(w, 0, 0.8, frame_seconds=0.1) == (0.2, 0.4)
    assert word_attention_span(w, 0, 0.9, frame_seconds=0.1) == (0.1, 0.4)
    assert word_attention_span(w * 7, 0, 1.0, frame_seconds=0.1) == (0.0, 0.5)  # unnormalised rows too
    with pytest.raises(ValueError, match="threshold"):
        word_attention_span(w, 0, 0.0, frame_seconds=0.1)
    with pytest.raises(ValueError, match="no attention mass"):
        word_attention_span(np.zeros((1, 3)), 0, 0.5, frame_seconds=0.1)
    wave = np.arange(16000, dtype=np.float32)
    assert audio_segment(wave, 16000, (0.25, 0.5)).tolist() == wave[4000:8000].tolist()


def _view() -> AttentionView:
    w = np.array([[0.1, 0.6, 0.2, 0.1, 0.0], [0.0, 0.0, 0.1, 0.2, 0.7], [0.2, 0.2, 0.2, 0.2, 0.2]])
    return AttentionView(w, 0.1, ["hello", "there", "hello"], "word_frame", "mean")


def test_figure_axes_and_traces():
    v = _view()
    wave = np.sin(np.linspace(0, 100, 8000)).astype(np.float32)  # 0.5 s at 16 kHz
    fig = attention_figure(v, wave, reference=[(0.1, 0.2), None, (0.3, 0.5)], highlight=1, threshold=0.9)
    names = [t.name for t in fig.data]
    assert names == ["waveform", "attention", "reference spans", "attended span"]
    heat = fig.data[1]
    assert isinstance(heat, go.Heatmap)
    np.testing.assert_allclose(heat.x, frames_to_seconds(5, 0.1))  # cell centres in seconds
    np.testing.assert_allclose(np.asarray(heat.z), v.weights)
    assert list(heat.y) == [0, 1, 2] and heat.customdata[2][0] == "hello"  # duplicate words keep their rows
    assert all(k in heat.hovertemplate for k in ("word", "time", "weight"))
    assert fig.layout.yaxis2.ticktext == ("0: hello", "1: there", "2: hello")
    assert fig.layout.xaxis2.title.text == "time (s)" and tuple(fig.layout.xaxis2.range) == (0, 0.5)
    assert fig.data[0].xaxis == "x" and heat.xaxis == "x2" and fig.layout.xaxis.matches == "x2"  # shared time axis
    ref = fig.data[2]  # two rectangles (word 1 has no span), closed, separated by None
    assert list(ref.x[:5]) == [0.1, 0.2, 0.2, 0.1, 0.1] and ref.x[5] is None and len(ref.x) == 12
    assert list(fig.data[3].x[:2]) == [0.3, 0.5]  # word 1 holds 0.9 in frames 3-4
    spec = attention_figure(v, wave, background="spectrogram")
    assert [t.name for t in spec.data] == ["log-mel", "attention"]
    bare = attention_figure(v)
    assert [t.name for t in bare.data] == ["attention"] and bare.layout.height <= 420
    with pytest.raises(ValueError, match="reference has 1 spans"):
        attention_figure(v, reference=[(0, 1)])


# --------------------------------------------------------------------------- explorer
CLASSES = ["ang", "neu"]


@pytest.fixture()
def explorer_run(tmp_path):
    from workbench.viz.explorer import ExplorerRun

    utts = []
    texts = ["hello there friend", "go away now", "fine thanks", "what a day", "no", "see you later"]
    for k, text in enumerate(texts):
        path = tmp_path / f"u{k}.wav"
        sf.write(path, (0.1 * np.sin(np.arange(16000) * (0.05 + 0.01 * k))).astype(np.float32), 16000)
        words = text.split()
        timings = [("<s>", 0.0, 0.1)] + [(wd.upper(), 0.1 + 0.25 * i, 0.35 + 0.25 * i) for i, wd in enumerate(words)]
        utts.append(make_utterance(id=f"Ses01F_impro01_{'FM'[k % 2]}{k:03d}", speaker=f"Ses01{'FM'[k % 2]}",
                                   audio_path=str(path), start=0.0, duration=1.0, text=text,
                                   label=CLASSES[k % 2 if k < 4 else 0], words=timings))
    manifest = Manifest(utts)
    rng = np.random.default_rng(0)
    feats = {"audio": {u.id: rng.normal(size=(100, 4)).astype(np.float32) for u in utts},
             "text": {u.id: rng.normal(size=(len(u.text.split()), 6)).astype(np.float32) for u in utts}}
    torch.manual_seed(0)
    model = create_model("xu_alignment", hidden=8, heads=2, attn_dim=4, audio_dim=4, text_dim=6, n_classes=2)
    ds = SERDataset(manifest, manifest.ids, feats, CLASSES)
    return ExplorerRun("xu test", "fold0", model, CLASSES, manifest, ds)


def test_explorer_builds_headless_and_updates(explorer_run):
    from workbench.viz.explorer import ALL, AttentionExplorer

    ex = AttentionExplorer({"xu test": {"fold0": explorer_run}})
    assert ex.run_dd.options == ("xu test",) and ex.fold_dd.value == "fold0"
    assert ex.label_dd.options == (ALL, "ang", "neu")
    assert ex.speaker_dd.options == (ALL, "Ses01F", "Ses01M")
    assert ex.map_dd.options == ("word_frame",) and ex.head_dd.options == ("mean", 0, 1)
    assert len(ex.utt_dd.options) == 6 and ex.utt_dd.value == explorer_run.ids[0]
    first = np.asarray(ex.figure.data[1].z).copy()
    assert first.shape == (3, 100)  # "hello there friend": 3 words x 100 frames of 10 ms
    ex.utt_dd.value = explorer_run.ids[1]
    assert ex.result.id == explorer_run.ids[1]
    assert np.asarray(ex.figure.data[1].z).shape == (3, 100) and not np.allclose(np.asarray(ex.figure.data[1].z), first)
    assert [o[1] for o in ex.word_dd.options] == [0, 1, 2] and "go" in ex.info.value

    ex.label_dd.value = "neu"
    assert all(explorer_run.manifest[v].label == "neu" for _, v in ex.utt_dd.options) and len(ex.utt_dd.options) == 2
    ex.label_dd.value = ALL
    ex.speaker_dd.value = "Ses01M"
    assert {explorer_run.manifest[v].speaker for _, v in ex.utt_dd.options} == {"Ses01M"}
    ex.speaker_dd.value = ALL
    preds = explorer_run.predictions()
    ex.correct_dd.value = "incorrect"
    assert [v for _, v in ex.utt_dd.options] == preds.loc[~preds["correct"], "utt_id"].tolist()
    ex.correct_dd.value = ALL

    ex.head_dd.value = 1
    assert ex.view.head == 1 and "head 1" in ex.figure.layout.title.text
    ex.word_dd.value = 2
    names = [t.name for t in ex.figure.data]
    assert names[-1] == "attended span" and "reference spans" in names
    span, seg = ex.word_audio()
    assert span == word_attention_span(ex.view, 2, ex.threshold_sl.value)
    assert len(seg) == pytest.approx((span[1] - span[0]) * 16000, abs=1)
    probs = ex.probabilities()
    assert list(probs.index) == CLASSES and probs.sum() == pytest.approx(1.0, abs=1e-5)
    ex.background_tb.value = "none"
    assert [t.name for t in ex.figure.data][0] == "attention"
    ex.play_utterance()  # no kernel: nothing rendered, nothing raised
    ex.play_word()


def test_explorer_lazy_loading_and_empty_filter(explorer_run):
    from workbench.viz.explorer import AttentionExplorer

    calls = []

    def load():
        calls.append(1)
        return explorer_run

    ex = AttentionExplorer({"a": {"f1": explorer_run}, "b": {"f2": load}})
    assert calls == []  # the second run is loaded only when chosen
    ex.run_dd.value = "b"
    assert calls == [1] and ex.fold_dd.options == ("f2",)
    ex.label_dd.value = "neu"
    ex.correct_dd.value = "correct"
    ex.correct_dd.value = "incorrect"
    if not ex.utt_dd.options:
        assert ex.figure is None and "no utterance" in ex.info.value


def test_asr_text_is_scored_against_the_corpus_timing(explorer_run, tmp_path):
    """A model that read ASR text (whose word timings are the recogniser's) is scored against
    the corpus's timing, and the explorer shows the oracle text beside the ASR text."""
    import dataclasses

    import pandas as pd

    from workbench.training.results import append_rows, results_dir
    from workbench.viz.explorer import AttentionExplorer, ExplorerRun, attention_agreement, find_runs, run_name

    shifted = []
    for u in explorer_run.manifest:
        recognised = [(w, s + 0.05, e + 0.05) for w, s, e in u.words if w != "<s>"]
        shifted.append(dataclasses.replace(u, words=recognised, extra={
            "text_source": "asr", "oracle_text": u.text.upper() + "!", "oracle_words": u.words}))
    asr_run = ExplorerRun("xu asr", "fold0", explorer_run.model, CLASSES, Manifest(shifted), explorer_run.dataset)
    ids = explorer_run.ids[:2]
    oracle_scores = attention_agreement(explorer_run, ids=ids)
    asr_scores = attention_agreement(asr_run, ids=ids)
    pd.testing.assert_frame_equal(asr_scores, oracle_scores)  # same reference spans, same maps
    assert asr_scores["ref_start"].iloc[0] == pytest.approx(0.1)  # the corpus's, not 0.15
    ex = AttentionExplorer({"xu asr": {"fold0": asr_run}})
    assert "oracle text: <i>HELLO THERE FRIEND!</i>" in ex.info.value
    assert "oracle text" not in AttentionExplorer({"x": {"fold0": explorer_run}}).info.value

    assert run_name("xu", "abcdef123", "demo", 0) == "xu abcdef12 demo s0"
    assert run_name("xu", "abcdef123", "demo", 0, "asr") == "xu abcdef12 demo s0 asr"
    rows = []
    for k, source in enumerate(["oracle", "asr"]):
        run_dir = tmp_path / f"run{k}"
        run_dir.mkdir()
        (run_dir / "best.pt").write_bytes(b"")
        rows.append({"run_id": f"r{k}", "model": "xu_alignment", "corpus": "synthetic", "corpus_preset": "smoke",
                     "text_source": source, "run_dir": str(run_dir), "created": f"2026-12-0{k + 1}"})
    append_rows(results_dir(tmp_path) / "results.parquet", pd.DataFrame(rows))
    assert find_runs(tmp_path, "xu_alignment", text_source="asr")["run_id"].tolist() == ["r1"]
    assert find_runs(tmp_path, "xu_alignment", text_source="oracle")["run_id"].tolist() == ["r0"]
    assert find_runs(tmp_path, "xu_alignment")["run_id"].tolist() == ["r1", "r0"]
    # corpus_size selects on the results column corpus_preset (its name before the rename)
    assert find_runs(tmp_path, "xu_alignment", corpus_size="smoke")["run_id"].tolist() == ["r1", "r0"]
    assert find_runs(tmp_path, "xu_alignment", corpus_size="demo").empty
    with pytest.raises(TypeError, match="corpus_preset"):  # the keyword before the rename is gone (issue 30)
        find_runs(tmp_path, "xu_alignment", corpus_preset="demo")


def test_explorer_display_carries_a_static_copy_of_its_current_view(explorer_run, tmp_path):
    """A frontend with a widget manager draws the widget; an HTML export (no widget manager, no
    network) shows the figure of the explorer's current view instead of a blank placeholder."""
    import re

    import nbformat

    from workbench.batch import html_exporter
    from workbench.viz.explorer import AttentionExplorer

    ex = AttentionExplorer({"xu test": {"fold0": explorer_run}})
    ex.utt_dd.value = explorer_run.ids[1]
    bundle = ex._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == ex.widget.model_id
    static = bundle["text/html"]
    assert "Plotly.newPlot(" in static and explorer_run.ids[1] in static and "plotly.js v" not in static
    # the exported page of a notebook holding that output
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("explorer")
    cell.outputs = [nbformat.v4.new_output("display_data", data=bundle)]
    nb.cells = [cell]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {ex.widget.model_id: {}}, "version_major": 2, "version_minor": 0}}
    path = tmp_path / "06.ipynb"
    nbformat.write(nb, str(path))
    page, _ = html_exporter().from_filename(str(path), resources={"workbench_plotly_js": "plotly.min.js"})
    assert "Plotly.newPlot(" in page and explorer_run.ids[1] in page
    assert "application/vnd.jupyter.widget-view+json" not in page
    assert re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", page) == ["plotly.min.js"]
