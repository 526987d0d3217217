"""The training benchmark: stand-in shapes match the real extractors, and a tiny run measures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.features.base import get_extractor
from workbench.protocols import make_folds
from workbench.training.bench import FEATURE_SHAPES, bench_training, random_features, report, stand_in_manifest
from workbench.training.build import model_inputs_of
from workbench.training.recipes import get_recipe


# ssl_layers has no default weights to build; its shape is that of a base-size encoder (docs/ssl.md)
@pytest.mark.parametrize("name", sorted(set(FEATURE_SHAPES) - {"visual", "ssl_layers"}))
def test_shapes_match_the_real_extractors(name: str) -> None:
    ext = get_extractor(name)
    dim, period = FEATURE_SHAPES[name]
    assert ext.dim == dim
    assert ext.frame_seconds == (pytest.approx(period) if period is not None else None)


def test_visual_period_matches_the_extractor() -> None:
    assert get_extractor("visual").frame_seconds == pytest.approx(FEATURE_SHAPES["visual"][1])


def test_stand_in_corpus_has_the_real_iemocap_durations_by_default() -> None:
    from workbench.corpus.standard import load_standard
    from workbench.training.bench import iemocap_durations

    table = load_standard()
    real = table.loc[table["label"].isin(["neu", "hap", "ang", "sad"]), "duration_s"].to_numpy(float)
    assert len(iemocap_durations()) == len(real) == 5531
    durs = np.array([u.duration for u in stand_in_manifest(seed=0)])
    np.testing.assert_allclose(np.sort(durs), np.sort(real))  # each real duration once
    # the real tail the log-normal lacked: 90th percentile 8.7 s, longest 34 s
    assert np.median(durs) == pytest.approx(3.58, abs=0.01) and np.quantile(durs, 0.9) == pytest.approx(8.69, abs=0.02)
    small = np.array([u.duration for u in stand_in_manifest(200, seed=3)])
    assert set(small) <= set(real)  # resampled from the real list at other sizes
    with pytest.raises(ValueError, match="lengths must be one of"):
        stand_in_manifest(10, lengths="gaussian")


def test_stand_in_corpus_is_iemocap_sized_and_shaped() -> None:
    m = stand_in_manifest(seed=0, lengths="lognormal")
    assert len(m) == 5531
    durs = np.array([u.duration for u in m])
    assert 0.6 <= durs.min() and durs.max() <= 35.0
    assert 3.2 < np.median(durs) < 3.8 and 3.8 < durs.mean() < 4.8
    scripted = np.mean([u.kind == "scripted" for u in m])
    assert 0.3 < scripted < 0.45
    train = make_folds(m, "loso_session")[0].train
    assert 4300 < len(train) < 4550  # "an IEMOCAP-sized fold (~4,400 training utterances)"
    u = m[m.ids[0]]
    assert len(u.words) == len(u.text.split()) and u.words[-1][2] == pytest.approx(u.duration)


def test_random_features_have_the_pooled_shapes_of_the_recipe() -> None:
    m = stand_in_manifest(20, seed=1)
    recipe = get_recipe("xu_alignment", "demo")  # frame34 pooled 4x, MiniLM words
    feats = random_features(m, recipe, model_inputs_of("xu_alignment", recipe))
    assert set(feats) == {"audio", "text"}
    assert feats["audio"].frame_seconds == pytest.approx(0.04) and feats["text"].frame_seconds is None
    for u in m:
        assert feats["audio"].data[u.id].shape == (math.ceil(u.duration / 0.01 / 4), 34)
        assert feats["text"].data[u.id].shape == (len(u.text.split()), 384)
    wave = get_recipe("cma_raw", "demo")  # waveform cropped to 4 s
    w = random_features(m, wave, ["waveform"])["waveform"]
    assert max(a.shape[0] for a in w.data.values()) <= 4 * 16000


def test_a_tiny_benchmark_trains_with_and_without_bucketing(tmp_path) -> None:
    frame = bench_training(["pepino_text"], recipe="smoke", n_utterances=80, epochs=1, bucketing=(True, False),
                           device="cpu", runs_root=tmp_path)
    assert frame["bucketing"].tolist() == [True, False]
    assert (frame["n_train"] > 0).all() and (frame["epochs"] == 1).all()
    assert (frame["utts_per_second"] > 0).all() and (frame["train_seconds"] > 0).all()
    assert frame["protocol"].iloc[0] == "session_script"
    table = report(frame)
    assert table.count("\n") == 2 and "| pepino_text | session_script |" in table


def test_cli_writes_one_row_per_model_and_bucketing(tmp_path, capsys) -> None:
    from workbench.cli import main

    csv = tmp_path / "bench.csv"
    assert main(["bench", "train", "--models", "pepino_audio", "--recipe", "smoke", "--epochs", "1",
                 "--utterances", "60", "--device", "cpu", "--quiet", "--csv", str(csv)]) == 0
    rows = pd.read_csv(csv)
    assert rows[["model", "bucketing"]].values.tolist() == [["pepino_audio", True], ["pepino_audio", False]]
    assert "| pepino_audio | session_script |" in capsys.readouterr().out


def test_concurrent_trainings_report_their_total_rate(tmp_path, capsys) -> None:
    from workbench.cli import main

    csv = tmp_path / "concurrent.csv"
    assert main(["bench", "train", "--models", "pepino_text", "--recipe", "smoke", "--epochs", "1",
                 "--utterances", "60", "--device", "cpu", "--concurrent", "1,2", "--csv", str(csv)]) == 0
    rows = pd.read_csv(csv)
    assert rows["concurrent"].tolist() == [1, 2] and (rows["lengths"] == "iemocap").all()
    assert (rows["utts_per_second_total"] > 0).all() and (rows["span_seconds"] > 0).all()
    assert rows["speedup"].iloc[0] == pytest.approx(1.0)
    # two trainings of one fold: twice the utterances over the span, each at its own rate
    two = rows.iloc[1]
    assert two.utts_per_second_total == pytest.approx(2 * two.n_train * two.epochs / two.span_seconds)
    assert "| pepino_text | 2 | 1 |" in capsys.readouterr().out


def test_the_benchmark_trains_a_model_without_default_weights_on_base_size_features(tmp_path) -> None:
    """ssl_baseline reads 13 hidden states of 768: the random stand-ins carry that layer count."""
    frame = bench_training(["ssl_baseline"], recipe="smoke", n_utterances=40, epochs=1, bucketing=(True,),
                           device="cpu", runs_root=tmp_path)
    assert frame["model"].tolist() == ["ssl_baseline"] and (frame["n_train"] > 0).all()
