"""prosody36 (openSMILE ComParE LLDs + first differences) and z-normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from workbench.corpus.manifest import Manifest
from workbench.features import get_extractor
from workbench.features.audio_io import AudioWarning
from workbench.features.normalise import normalise
from workbench.features.prosody import FEATURE_NAMES, add_first_differences, prosody_lld
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


def test_extractor_shape_rate_and_bad_audio(tmp_path):
    ext = get_extractor("prosody36")
    assert ext.dim == 36 and ext.frame_seconds == 0.01
    path = tmp_path / "v.wav"
    sf.write(path, voiced(180, 1.5), SR)
    f = ext.extract(make_utterance(audio_path=str(path), duration=1.5))
    assert f.shape == ((24000 - 960) // 160 + 2, 36) and f.dtype == np.float32
    np.testing.assert_allclose(f[1:, 18:], np.diff(f[:, :18], axis=0), atol=1e-4)
    assert not np.any(f[0, 18:])
    # silent and 20 ms clips: a defined, finite result with a warning naming the utterance
    sf.write(tmp_path / "s.wav", np.zeros(SR, np.float32), SR)
    with pytest.warns(AudioWarning, match="silent"):
        s = ext.extract(make_utterance(id="Ses01F_impro01_F007", audio_path=str(tmp_path / "s.wav")))
    assert np.isfinite(s).all()
    sf.write(tmp_path / "t.wav", voiced(180, 0.02), SR)
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
