"""Stored per-frame visual descriptors: path rule, shapes and clear errors."""

import numpy as np
import pytest

from workbench.features import get_extractor
from workbench.features.visual import VisualFeatureError, visual_path
from workbench.testing.dummies import make_utterance


def _utt(root, name="Ses01F_impro01_F000", **kw):
    wav = root / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / f"{name}.wav"
    return make_utterance(id=name, audio_path=str(wav), **kw)


def _store(root, utt, arr):
    p = root / "Session1" / "sentences" / "visual" / "Ses01F_impro01" / f"{utt.id}.npy"
    p.parent.mkdir(parents=True, exist_ok=True)
    np.save(p, arr)
    return p


def test_reads_descriptors_beside_the_wavs(tmp_path):
    utt = _utt(tmp_path)
    arr = np.arange(12, dtype=np.float64).reshape(4, 3)
    assert visual_path(utt) == _store(tmp_path, utt, arr)
    ex = get_extractor("visual")
    assert ex.source == "visual" and ex.frame_seconds == pytest.approx(1 / 3)
    out = ex.extract(utt)
    assert out.dtype == np.float32 and ex.dim == 3
    np.testing.assert_array_equal(out, arr)


def test_explicit_path_and_frame_rate(tmp_path):
    p = tmp_path / "any" / "v.npy"
    p.parent.mkdir()
    np.save(p, np.ones((2, 5), np.float32))
    utt = make_utterance(audio_path="elsewhere/x.wav", extra={"visual_path": str(p)})
    ex = get_extractor("visual", frame_seconds=0.04, dim=5)
    assert ex.frame_seconds == 0.04 and ex.extract(utt).shape == (2, 5)


@pytest.mark.parametrize("arr, match", [
    (np.ones(5), r"shape \(5,\)"),
    (np.ones((0, 3)), r"shape \(0, 3\)"),
    (np.array([[1.0, np.nan]]), "NaN"),
])
def test_malformed_files_raise_naming_utterance_and_path(tmp_path, arr, match):
    utt = _utt(tmp_path)
    p = _store(tmp_path, utt, arr)
    with pytest.raises(VisualFeatureError, match=match) as e:
        get_extractor("visual").extract(utt)
    assert utt.id in str(e.value) and str(p) in str(e.value)


def test_missing_file_and_dim_mismatch(tmp_path):
    utt = _utt(tmp_path)
    with pytest.raises(VisualFeatureError, match="does not exist") as e:
        get_extractor("visual").extract(utt)
    assert utt.id in str(e.value) and str(visual_path(utt)) in str(e.value)
    _store(tmp_path, utt, np.ones((3, 4)))
    with pytest.raises(VisualFeatureError, match="dim 4, expected 6"):
        get_extractor("visual", dim=6).extract(utt)
    with pytest.raises(VisualFeatureError, match="sentences/wav"):
        visual_path(make_utterance(audio_path="flat/x.wav"))


@pytest.mark.parametrize("value", ["../../secret.npy", "sub/../../x.npy", "/etc/passwd", "v.txt", "/abs/../x.npy"])
def test_explicit_path_must_be_a_npy_without_dotdot(tmp_path, value):
    utt = make_utterance(audio_path=str(tmp_path / "wavs" / "x.wav"), extra={"visual_path": value})
    with pytest.raises(VisualFeatureError, match=r"must name a \.npy file without '\.\.'") as e:
        get_extractor("visual").extract(utt)
    assert utt.id in str(e.value) and value in str(e.value)


def test_relative_explicit_path_is_taken_from_the_wav_folder(tmp_path):
    p = tmp_path / "wavs" / "vis" / "x.npy"
    p.parent.mkdir(parents=True)
    np.save(p, np.ones((2, 3), np.float32))
    utt = make_utterance(audio_path=str(tmp_path / "wavs" / "x.wav"), extra={"visual_path": "vis/x.npy"})
    assert visual_path(utt) == p and get_extractor("visual").extract(utt).shape == (2, 3)
