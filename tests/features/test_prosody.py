"""prosody36 (Pepino et al. sec. 2.2: openSMILE LLDs over 32 ms windows, normalised, then
first differences) and z-normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from workbench.corpus.manifest import Manifest
from workbench.features import get_extractor
from workbench.features.audio_io import AudioWarning
from workbench.features.normalise import load_normalisers, normalise, save_normalisers
from workbench.features.prosody import FEATURE_NAMES, _smile, add_first_differences, prosody_lld
from workbench.testing.dummies import make_utterance

SR = 16000


def voiced(f0: float, seconds: float, amp: float = 0.3) -> np.ndarray:
    """A buzzy harmonic signal (glottal-like) with fundamental f0: pitch trackers lock on it."""
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12))
    return (amp * y / np.abs(y).max()).astype(np.float32)


def test_pitch_loudness_and_differences():
    low, high = prosody_lld(voiced(150, 1.0)), prosody_lld(voiced(150, 1.0, amp=0.05))
    assert low.shape[1] == 18 and len(FEATURE_NAMES) == 36
    pitch = low[20:-20, 0]
    assert np.median(pitch[pitch > 0]) == pytest.approx(150, rel=0.03)
    assert np.median(low[:, 4]) > 2 * np.median(high[:, 4])  # louder signal, larger loudness
    y220 = prosody_lld(voiced(220, 1.0))[20:-20, 0]
    assert np.median(y220[y220 > 0]) == pytest.approx(220, rel=0.03)


def test_windows_are_32_ms_every_10_ms():
    """Section 2.2: "divided into 32ms segments, using a hop length of 10ms" (ComParE's own
    windows are 60 ms for pitch and voice quality and 20 ms for the rest)."""
    frames = _smile().process_signal(np.full(SR, 0.01, np.float32), SR).index
    start, end = frames.get_level_values("start"), frames.get_level_values("end")
    # (openSMILE's last row is its end-of-input flush, cut at the signal's end)
    assert set((end - start).total_seconds()[:-1]) == {0.032}
    np.testing.assert_allclose(np.diff(start.total_seconds()[:-1]), 0.01)
    # A click at 1.0 s is inside the windows of frames 97-100 (t * 10 ms <= 1.0 < t * 10 ms + 32 ms);
    # the 3-frame moving average spreads it by one frame each side. 20 ms windows would light
    # 98-101, 60 ms ones 94-101.
    y = np.zeros(2 * SR, np.float32)
    y[SR] = 0.9
    loudness = prosody_lld(y)[:, 4]
    assert np.flatnonzero(loudness > 10 * np.median(loudness)).tolist() == [96, 97, 98, 99, 100, 101]


def test_extractor_stores_the_18_llds_shape_rate_and_bad_audio(tmp_path):
    ext = get_extractor("prosody36")
    assert ext.dim == 18 and ext.frame_seconds == 0.01 and ext.config.window_seconds == 0.032
    path = tmp_path / "v.wav"
    sf.write(path, voiced(180, 1.5), SR)
    f = ext.extract(make_utterance(audio_path=str(path), duration=1.5))
    assert f.shape == ((24000 - 512) // 160 + 2, 18) and f.dtype == np.float32
    pitch = f[20:-20, 0]
    assert np.median(pitch[pitch > 0]) == pytest.approx(180, rel=0.03)
    # silent and 20 ms clips: a defined, finite result with a warning naming the utterance
    sf.write(tmp_path / "s.wav", np.zeros(SR, np.float32), SR)
    with pytest.warns(AudioWarning, match="silent"):
        s = ext.extract(make_utterance(id="Ses01F_impro01_F007", audio_path=str(tmp_path / "s.wav")))
    assert np.isfinite(s).all()
    sf.write(tmp_path / "t.wav", voiced(180, 0.02), SR)  # shorter than one 32 ms window
    with pytest.warns(AudioWarning, match="Ses01F_impro01_F008.*zero-padded"):
        t = ext.extract(make_utterance(id="Ses01F_impro01_F008", audio_path=str(tmp_path / "t.wav")))
    assert t.shape[0] >= 1 and np.isfinite(t).all()


def test_add_first_differences():
    x = np.arange(12, dtype=np.float32).reshape(4, 3) ** 2
    out = add_first_differences(x)
    assert out.shape == (4, 6)
    np.testing.assert_array_equal(out[:, :3], x)
    np.testing.assert_array_equal(out[1:, 3:], x[1:] - x[:-1])


def test_normalise_global_speaker_and_fit_ids():
    rng = np.random.default_rng(0)
    utts = [make_utterance(id=f"Ses01F_impro01_{s}{i:03d}") for s in "FM" for i in range(3)]
    m = Manifest(utts)
    feats = {u.id: rng.normal(5 if u.speaker.endswith("F") else -3, 2, size=(50 + i, 4)) for i, u in enumerate(utts)}
    g = normalise(feats, m, "global")
    allg = np.concatenate([g[i] for i in m.ids])
    np.testing.assert_allclose(allg.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(allg.std(0), 1, atol=1e-5)
    sp = normalise(feats, m, "speaker")
    for spk in ("Ses01F", "Ses01M"):
        x = np.concatenate([sp[u.id] for u in utts if u.speaker == spk])
        np.testing.assert_allclose(x.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(x.std(0), 1, atol=1e-5)
    train = m.ids[:2]
    fit = normalise(feats, m, "global", fit_ids=train)
    tr = np.concatenate([fit[i] for i in train])
    np.testing.assert_allclose(tr.mean(0), 0, atol=1e-5)
    assert np.abs(np.concatenate([fit[i] for i in m.ids]).mean(0)).max() > 0.5  # test frames not fitted
    assert np.array_equal(normalise(feats, m, "none")[m.ids[0]], feats[m.ids[0]].astype(np.float32))
    with pytest.raises(ValueError, match="mode 'zscore'"):
        normalise(feats, m, "zscore")  # type: ignore[arg-type]


def test_deltas_are_taken_after_normalisation(tmp_path):
    """Section 2.2: the LLDs are normalised with global statistics, *then* first differences
    are added: the delta columns are differences of normalised frames (x[t] - x[t-1]) / std,
    not z-scores of raw differences. The training inputs do it (FeatureSpec deltas), through
    the one normalisation path, and the saved normaliser does it again on reload."""
    from workbench.training.inputs import InputFeatures, fit_normalisers, make_dataset
    from workbench.training.recipes import FeatureSpec, get_recipe

    spec = get_recipe("pepino_audio", "paper").features["audio"]
    assert (spec.extractor, spec.normalise, spec.deltas) == ("prosody36", "global", True)
    assert get_recipe("pepino_audio", "demo").features["audio"].deltas  # the CPU recipes too

    rng = np.random.default_rng(1)
    utts = [make_utterance(id=f"Ses01F_impro01_{s}{i:03d}") for s in "FM" for i in range(3)]
    m = Manifest(utts)
    raw = {u.id: (rng.normal(size=(20 + i, 18)) * np.arange(1, 19) + 50).astype(np.float32) for i, u in enumerate(utts)}
    train = m.ids[:4]
    feats = {"audio": InputFeatures(FeatureSpec("prosody36", normalise="global", deltas=True), raw, 0.01, 36)}
    norms = fit_normalisers(feats, m, m.ids, train)
    ds = make_dataset(m, m.ids, feats, norms, ("neu", "hap", "ang", "sad"), word_spans=False)
    stacked = np.concatenate([raw[i] for i in train]).astype(np.float64)
    mean, std = stacked.mean(0), stacked.std(0)
    for k, i in enumerate(m.ids):
        z = (raw[i] - mean) / std
        expected = np.concatenate([z, np.vstack([np.zeros((1, 18)), np.diff(z, axis=0)])], axis=1)
        np.testing.assert_allclose(ds[k]["audio"], expected, atol=1e-4)
    # the old order (deltas of raw LLDs, then z-scores of all 36 columns) gives other delta columns
    old = normalise({i: add_first_differences(raw[i]) for i in m.ids}, m, "global", fit_ids=train)
    assert not np.allclose(old[m.ids[0]][:, 18:], ds[0]["audio"][:, 18:], atol=1e-2)
    np.testing.assert_allclose(old[m.ids[0]][:, :18], ds[0]["audio"][:, :18], atol=1e-4)
    # saved with the run and reloaded: the same 36 columns
    save_normalisers(tmp_path / "n.npz", norms)
    again = load_normalisers(tmp_path / "n.npz")["audio"]
    assert again.deltas
    np.testing.assert_array_equal(again(m.ids[2], raw[m.ids[2]]), ds[2]["audio"])
    # per-speaker statistics and no normalisation keep the order too
    sp = normalise(raw, m, "speaker", deltas=True)[m.ids[0]]
    np.testing.assert_allclose(sp[1:, 18:], np.diff(sp[:, :18], axis=0), atol=1e-5)
    assert normalise(raw, m, "none", deltas=True)[m.ids[0]].shape == (20, 36)


def test_model_input_is_36_wide_from_18_stored_llds(tmp_path):
    """The cache stores 18 columns; the model reads 36 (LLDs + deltas) and is built for 36."""
    from workbench.features.cache import FeatureCache
    from workbench.training.build import build_model
    from workbench.training.inputs import load_input_features
    from workbench.training.recipes import get_recipe

    utts = []
    for k, f0 in enumerate((140, 210)):
        path = tmp_path / f"u{k}.wav"
        sf.write(path, voiced(f0, 0.8), SR)
        utts.append(make_utterance(id=f"Ses01F_impro01_F{k:03d}", audio_path=str(path), duration=0.8))
    m = Manifest(utts)
    recipe = get_recipe("pepino_audio", "paper")
    feats = load_input_features(m, recipe, ("audio",), cache=FeatureCache(tmp_path / "cache"), progress=False)
    assert feats["audio"].dim == 36 and feats["audio"].data[m.ids[0]].shape[1] == 18
    model, config = build_model("pepino_audio", recipe, {}, feats, 4)
    assert config["audio_dim"] == 36
