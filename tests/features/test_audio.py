"""Audio loading and frame-level acoustic extractors, checked against independent computations."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf

from workbench.features import get_extractor, list_extractors
from workbench.features.audio import Mfcc120Config, frame34_features, librosa_mfcc120, torch_mfcc120
from workbench.features.audio_io import AudioWarning, audio_frames, load_audio
from workbench.testing.dummies import make_utterance

SR = 16000


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def chirp(seconds: float, f0: float = 100.0, f1: float = 4000.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.4 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)))).astype(np.float32)


def wav_utt(tmp_path, y, sr=SR, name="Ses01F_impro01_F000", **kw):
    path = tmp_path / f"{name}.wav"
    sf.write(path, y, sr)
    return make_utterance(id=name, audio_path=str(path), duration=len(y) / sr, **kw)


# --------------------------------------------------------------------------- load_audio
def test_load_audio_resamples_and_keeps_the_tone(tmp_path):
    u = wav_utt(tmp_path, tone(440, 1.0, sr=8000), sr=8000)
    y = load_audio(u)
    assert y.dtype == np.float32 and y.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * SR / len(y) - 440) <= 1.0
    assert audio_frames(u) == 16000


def test_load_audio_stereo_is_averaged_with_a_warning(tmp_path):
    left, right = tone(300, 0.5), tone(300, 0.5, amp=0.1)
    u = wav_utt(tmp_path, np.stack([left, right], axis=1))
    with pytest.warns(AudioWarning, match="Ses01F_impro01_F000.*2-channel"):
        y = load_audio(u)
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-4)


def test_load_audio_silent_clipped_short(tmp_path):
    with pytest.warns(AudioWarning, match="silent"):
        assert not np.any(load_audio(wav_utt(tmp_path, np.zeros(8000, np.float32))))
    clipped = np.clip(tone(200, 0.5, amp=3.0), -1, 1)
    with pytest.warns(AudioWarning, match="clipped"):
        load_audio(wav_utt(tmp_path, clipped, name="Ses01F_impro01_F001"))
    short = tone(200, 0.03)
    with pytest.warns(AudioWarning, match="Ses01F_impro01_F002.*30 ms.*zero-padded"):
        y = load_audio(wav_utt(tmp_path, short, name="Ses01F_impro01_F002"), min_seconds=0.08)
    assert y.shape == (1280,) and np.array_equal(y[: len(short)], load_audio(tmp_path / "Ses01F_impro01_F002.wav"))
    assert not np.any(y[len(short) :])


def test_load_audio_empty_or_unreadable_names_the_utterance(tmp_path):
    empty = wav_utt(tmp_path, np.zeros(0, np.float32), name="Ses01F_impro01_F003")
    with pytest.raises(ValueError, match=r"Ses01F_impro01_F003.*no samples"):
        load_audio(empty)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav")
    with pytest.raises(ValueError, match=r"Ses01F_impro01_F004.*bad\.wav"):
        load_audio(make_utterance(id="Ses01F_impro01_F004", audio_path=str(bad)))
    with pytest.raises(ValueError, match=r"Ses01F_impro01_F005.*missing\.wav"):
        load_audio(make_utterance(id="Ses01F_impro01_F005", audio_path=str(tmp_path / "missing.wav")))


def test_load_audio_reads_only_the_segment_of_a_longer_file(tmp_path):
    y = np.concatenate([tone(200, 1.0), tone(1000, 1.0), tone(200, 1.0)])
    path = tmp_path / "dialog.wav"
    sf.write(path, y, SR)
    u = make_utterance(audio_path=str(path), start=1.0, duration=1.0)
    seg = load_audio(u)
    assert seg.shape == (16000,)
    np.testing.assert_allclose(seg, y[16000:32000], atol=1e-4)


# --------------------------------------------------------------------------- mfcc120
def test_torch_mfcc_matches_librosa_on_every_frame():
    ys = [chirp(1.0), chirp(0.37, 300, 3000), tone(250, 0.081)]  # lengths differ: one padded batch
    cfg = Mfcc120Config()
    for y, got in zip(ys, torch_mfcc120(ys, cfg)):
        ref = librosa_mfcc120(y, cfg)
        assert got.shape == ref.shape == (1 + len(y) // 160, 120)
        # Edges included: the torch path reproduces librosa's padding and interp deltas.
        assert np.abs(got - ref).max() < 1e-3


def test_mfcc120_extractor_shape_rate_and_order(tmp_path):
    ext = get_extractor("mfcc120", device="cpu", batch_size=2)
    assert ext.frame_seconds == 0.01 and ext.dim == 120
    utts = [wav_utt(tmp_path, chirp(s), name=f"Ses01F_impro01_F{i:03d}") for i, s in enumerate([0.9, 0.3, 0.6])]
    out = ext.extract_batch(utts)
    for u, f in zip(utts, out):
        assert f.shape == (1 + round(u.duration * SR) // 160, 120)
        np.testing.assert_allclose(f, librosa_mfcc120(load_audio(u)), atol=1e-3)
    # device/batch size never change values, so they stay out of the cache key
    assert ext.config.hash() == get_extractor("mfcc120").config.hash()
    assert ext.config.hash() != get_extractor("mfcc120", n_mfcc=13).config.hash()


# --------------------------------------------------------------------------- mfcc40
def _librosa_mfcc40(y: np.ndarray) -> np.ndarray:
    """Sun et al.'s 40 MFCC (25 ms window, 10 ms hop), computed here with librosa alone."""
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=512, hop_length=160, win_length=400, window="hann",
                                         center=True, pad_mode="constant", n_mels=40)
    return librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=80.0), n_mfcc=40).T


def test_mfcc40_is_40_mfcc_per_10ms_capped_at_the_first_1000_frames(tmp_path):
    ext = get_extractor("mfcc40", device="cpu", batch_size=2)
    assert ext.dim == 40 and ext.frame_seconds == 0.01 and ext.config.max_frames == 1000
    # 12 s (1,201 frames) is cropped; 0.6 s and 30 ms (3 frames: no delta context needed) are not
    lengths = [12.0, 0.6, 0.03]
    utts = [wav_utt(tmp_path, chirp(s), name=f"Ses01F_impro01_F{i:03d}") for i, s in enumerate(lengths)]
    out = ext.extract_batch(utts)
    for u, f in zip(utts, out):
        ref = _librosa_mfcc40(load_audio(u))  # the whole clip, then the cap: the floor sees every frame
        assert f.dtype == np.float32 and f.shape == (min(len(ref), 1000), 40)
        np.testing.assert_allclose(f, ref[:1000], atol=1e-3)
    assert len(_librosa_mfcc40(load_audio(utts[0]))) == 1201  # so the first clip really was cut
    # the static coefficients are mfcc120's first 40 columns: one computation, two extractors
    np.testing.assert_allclose(out[1], get_extractor("mfcc120", device="cpu").extract(utts[1])[:, :40], atol=1e-5)
    uncapped = get_extractor("mfcc40", device="cpu", max_frames=None).extract(utts[0])
    assert uncapped.shape == (1201, 40) and np.array_equal(uncapped[:1000], out[0])
    assert ext.config.hash() != get_extractor("mfcc40", max_frames=None).config.hash()
    with pytest.raises(ValueError, match="mfcc40.*max_frames"):
        get_extractor("mfcc40", max_frames=0)


# --------------------------------------------------------------------------- frame34
def _pyaa_reference_frame(x: np.ndarray, prev_mag: np.ndarray | None, sr: int = SR):
    """Per-frame loop transcription of pyAudioAnalysis's time/spectral features (first 8 columns)."""
    eps = 1e-8
    n = len(x)
    zcr = np.sum(np.abs(np.diff(np.sign(x)))) / 2 / (n - 1)
    energy = np.sum(x**2) / n

    def entropy(v):
        sub = len(v) // 10
        s = np.array([np.sum(v[j * sub : (j + 1) * sub] ** 2) for j in range(10)]) / (np.sum(v**2) + eps)
        return -np.sum(s * np.log2(s + eps))

    mag = np.abs(np.fft.fft(x))[: n // 2] / (n // 2)
    ind = np.arange(1, n // 2 + 1) * sr / n
    xt = mag / mag.max()
    c = np.sum(ind * xt) / (np.sum(xt) + eps)
    spread = np.sqrt(np.sum((ind - c) ** 2 * xt) / (np.sum(xt) + eps))
    prev = mag if prev_mag is None else prev_mag
    flux = np.sum((mag / np.sum(mag + eps) - prev / np.sum(prev + eps)) ** 2)
    cum = np.cumsum(mag**2) + eps
    roll = np.nonzero(cum > 0.9 * np.sum(mag**2))[0][0] / (n // 2)
    return np.array([zcr, energy, entropy(x), c / (sr / 2), spread / (sr / 2), entropy(mag), flux, roll]), mag


def test_frame34_matches_a_per_frame_loop_and_tone_physics():
    rng = np.random.default_rng(0)
    y = chirp(0.5) + 0.05 * rng.standard_normal(8000).astype(np.float32)
    feats = frame34_features(y)
    assert feats.shape == (1 + (8000 - 320) // 160, 34) and np.isfinite(feats).all()
    x = (y - y.mean()) / np.abs(y - y.mean()).max()
    prev = None
    for t in range(feats.shape[0]):
        ref, prev = _pyaa_reference_frame(x[t * 160 : t * 160 + 320].astype(np.float64), prev)
        np.testing.assert_allclose(feats[t, :8], ref, rtol=1e-4, atol=1e-6)
    # A 1 kHz tone: ZCR = 2 f / sr, centroid within one 50 Hz bin of 1 kHz, energy of a unit sine 0.5.
    f = frame34_features(tone(1000, 0.5))
    np.testing.assert_allclose(f[:, 0], 2 * 1000 / SR, atol=0.004)
    assert np.all(np.abs(f[:, 3] * SR / 2 - 1000) < 60)
    np.testing.assert_allclose(f[:, 1], 0.5, atol=0.01)
    chroma = f[:, 21:33]
    assert np.all(chroma >= 0) and np.all(chroma.sum(axis=1) <= 1 + 1e-6)
    np.testing.assert_allclose(f[:, 33], chroma.std(axis=1), rtol=1e-5)


def test_frame34_silence_is_finite(tmp_path):
    ext = get_extractor("frame34")
    assert ext.frame_seconds == 0.01 and ext.dim == 34
    with pytest.warns(AudioWarning):
        f = ext.extract(wav_utt(tmp_path, np.zeros(4000, np.float32)))
    assert f.shape == (24, 34) and np.isfinite(f).all()


# --------------------------------------------------------------------------- spectrogram / waveform
def test_spectrogram257_peak_and_values(tmp_path):
    import librosa

    y = tone(1000, 0.5)
    ext = get_extractor("spectrogram257", pad=False)  # padding to 10 s: see the crop/pad test
    u = wav_utt(tmp_path, y)
    s = ext.extract(u)
    assert s.shape == (1 + len(y) // 160, 257) and ext.frame_seconds == 0.01
    assert np.all(np.argmax(s[2:-2], axis=1) == 32)  # 1000 Hz * 512 / 16000
    ref = np.abs(librosa.stft(load_audio(u), n_fft=512, hop_length=160, win_length=400)) ** 2
    np.testing.assert_allclose(s[10], 10 * np.log10(np.maximum(ref[:, 10], 1e-10)), atol=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioWarning)
        silent = ext.extract(wav_utt(tmp_path, np.zeros(1000, np.float32), name="Ses01F_impro01_F009"))
    assert np.all(silent == -100.0)  # exact: the floor is a clamp to a constant


@pytest.mark.parametrize("floor_db", [-100.0, -80.0, -120.0, -97.3])
def test_spectrogram257_floor_is_exact_whatever_log10_rounds(tmp_path, monkeypatch, floor_db):
    """The documented dB floor comes out exactly, even where float32 log10 rounds a last bit
    differently (AVX-512 numpy gave -100.00001 when the floor was applied to the power)."""
    real_log10 = np.log10

    def log10_one_ulp_low(x, *args, **kwargs):  # what a wider-SIMD log10 may return
        y = real_log10(x, *args, **kwargs)
        return np.nextafter(y, np.asarray(-np.inf, dtype=y.dtype))

    ext = get_extractor("spectrogram257", floor_db=floor_db)
    u = wav_utt(tmp_path, np.concatenate([np.zeros(1600, np.float32), tone(1000, 0.2)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioWarning)
        plain = ext.extract(u)
        monkeypatch.setattr(np, "log10", log10_one_ulp_low)
        skewed = ext.extract(u)
    for s in (plain, skewed):
        assert s.min() == np.float32(floor_db)  # exact: a clamp to the configured constant
        assert np.all(s[:5] == np.float32(floor_db))  # leading silence sits on the floor
    np.testing.assert_allclose(skewed, plain, rtol=1e-6, atol=1e-4)  # only the last bit moved


def test_spectrogram257_crops_the_first_10_s_pads_to_10_s_and_reports_real_frames(tmp_path):
    """Krishna and Patil (sec. 5) compute the spectrogram of the 10 s the waveform model reads:
    the first 10 s of a longer clip, a shorter one zero-padded (sec. 4)."""
    ext = get_extractor("spectrogram257")  # the defaults are the paper's
    assert (ext.config.max_seconds, ext.config.pad) == (10.0, True)
    short = wav_utt(tmp_path, chirp(2.5))
    s = ext.extract(short)
    assert s.shape == (1001, 257) and ext.valid_length(short) == 1 + 40000 // 160
    # the real frames are those of the unpadded clip, bit for bit; the rest is padding
    unpadded = get_extractor("spectrogram257", pad=False).extract(short)
    assert unpadded.shape == (251, 257)
    np.testing.assert_array_equal(s[:251], unpadded)
    assert np.all(s[252:] == -100.0) and not np.all(s[250] == -100.0)

    y = chirp(12.0)
    long = wav_utt(tmp_path, y, name="Ses01F_impro01_F001")
    s = ext.extract(long)
    assert s.shape == (1001, 257) and ext.valid_length(long) == 1001
    # the first 10 s are kept (not the last): the crop's frames equal those of the whole clip
    # except the last few, whose window reaches past the cut
    whole = get_extractor("spectrogram257", max_seconds=None).extract(long)
    assert whole.shape == (1 + len(y) // 160, 257)
    np.testing.assert_array_equal(s[:998], whole[:998])
    assert not np.allclose(s[-1], whole[1000], atol=1.0)
    ref = get_extractor("spectrogram257", pad=False).extract(wav_utt(tmp_path, y[:160000], name="Ses01F_impro01_F002"))
    np.testing.assert_array_equal(s, ref)


def test_padded_spectrogram_frames_never_reach_pooling_normalisation_or_the_model(tmp_path):
    """The training pipeline cuts a padded feature back to its real frames, as it does the
    waveform's, so a clip padded to 10 s is the clip (the batch mask stands for the padding)."""
    from workbench.corpus.manifest import Manifest
    from workbench.features.cache import FeatureCache
    from workbench.training.inputs import load_input_features
    from workbench.training.recipes import FeatureSpec, get_recipe

    utts = [wav_utt(tmp_path, chirp(s), name=f"Ses01F_impro01_F00{i}") for i, s in enumerate((1.0, 2.5))]
    manifest = Manifest(utts)
    recipe = get_recipe("cma_spec", "paper")
    spec = recipe.features["audio"]
    paper = get_extractor(spec.extractor, **spec.config).config
    assert (spec.extractor, paper.max_seconds, paper.pad) == ("spectrogram257", 10.0, True)  # the paper recipe pads
    cache = FeatureCache(tmp_path / "cache")
    feats = load_input_features(manifest, recipe, ("audio",), cache=cache, progress=False)["audio"]
    assert [feats.data[u.id].shape[0] for u in utts] == [101, 251]
    pooled = recipe.replace(features={"audio": FeatureSpec("spectrogram257", pool=2)})
    feats = load_input_features(manifest, pooled, ("audio",), cache=cache, progress=False)["audio"]
    assert [feats.data[u.id].shape[0] for u in utts] == [51, 126]


def test_waveform_crops_pads_and_reports_true_length(tmp_path):
    ext = get_extractor("waveform")
    assert ext.dim == 1 and ext.frame_seconds == 1 / SR
    short = wav_utt(tmp_path, tone(300, 2.5, sr=8000), sr=8000)
    w = ext.extract(short)
    assert w.shape == (160000, 1) and ext.valid_length(short) == 40000
    assert not np.any(w[40000:]) and np.any(w[:40000])
    long = wav_utt(tmp_path, chirp(12.0), name="Ses01F_impro01_F001")
    w = ext.extract(long)
    assert w.shape == (160000, 1) and ext.valid_length(long) == 160000
    np.testing.assert_allclose(w[:, 0], chirp(12.0)[:160000], atol=1e-4)
    assert get_extractor("waveform", pad=False).extract(short).shape == (40000, 1)


def test_registry_lists_the_audio_extractors():
    names = list_extractors()
    for name, dim in [("mfcc120", 120), ("mfcc40", 40), ("frame34", 34), ("prosody36", 18), ("spectrogram257", 257),
                      ("waveform", 1)]:
        assert name in names and get_extractor(name).dim == dim
    with pytest.raises(ValueError, match="n_mfc"):
        get_extractor("mfcc120", n_mfc=13)


def test_audio_warnings_are_summarised_once():
    import warnings as w

    from workbench.features.audio_io import AudioWarning, summarised_audio_warnings

    with w.catch_warnings(record=True) as caught:
        w.simplefilter("always")
        with summarised_audio_warnings("ASR", limit=2):
            for i in range(5):
                w.warn(f"utterance u{i}: clipped", AudioWarning)
            w.warn("something else", UserWarning)
    audio = [str(c.message) for c in caught if c.category is AudioWarning]
    assert len(audio) == 1 and audio[0].startswith("ASR: 5 audio issue(s):")
    assert "u0: clipped" in audio[0] and "u2" not in audio[0] and "... and 3 more" in audio[0]
    assert [str(c.message) for c in caught if c.category is UserWarning] == ["something else"]


def test_an_audio_issue_is_reported_once_per_process_not_once_per_extractor():
    import warnings as w

    from workbench.features.audio_io import AudioWarning, summarised_audio_warnings

    def extraction(name: str, utts: list[str]) -> list[str]:
        with w.catch_warnings(record=True) as caught:
            w.simplefilter("always")
            with summarised_audio_warnings(name):
                for u in utts:
                    w.warn(f"utterance {u!r}: 0.2% of samples in /data/{u}.wav are clipped", AudioWarning)
        return [str(c.message) for c in caught if c.category is AudioWarning]

    first = extraction("mfcc120", ["a", "b"])
    assert len(first) == 1 and first[0].startswith("mfcc120: 2 audio issue(s):")
    assert extraction("frame34", ["a", "b"]) == []  # the same files, read by another extractor
    third = extraction("prosody36", ["a", "c"])
    assert len(third) == 1 and third[0].startswith("prosody36: 1 audio issue(s) (and 1 reported above):")
    assert "'c'" in third[0] and "'a'" not in third[0]
