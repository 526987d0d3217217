"""extract_iemocap_video on a tiny split-screen avi made with ffmpeg.

The fixture video is 3 s at 30 fps, 128 x 64: the left half red, the right half blue, and the
green level of both halves encodes the second (20, 120, 220), so the colour statistics of a
descriptor say which half and which second each sampled frame came from.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

# The video writer of the corpus tests (MELD's clips use it too), found when this file runs alone.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "corpus"))
from media_fixtures import write_video  # noqa: E402

from workbench.corpus.manifest import Manifest, OutsideRootError  # noqa: E402
from workbench.features.iemocap_video import (  # noqa: E402
    VideoConfig,
    extract_iemocap_video,
    frame_indices,
    hog,
    hog_colour_descriptor,
)
from workbench.features.visual import Visual  # noqa: E402
from workbench.testing.dummies import make_utterance  # noqa: E402

HOG_DIM = 3 * 3 * 2 * 2 * 9
GREEN = (20, 120, 220)  # per second of the video


def _video(path: Path) -> Path:
    frames = np.zeros((90, 64, 128, 3), np.uint8)
    for k in range(90):
        frames[k, :, :64] = (200, GREEN[k // 30], 30)
        frames[k, :, 64:] = (30, GREEN[k // 30], 200)
    return write_video(path, frames, 30)


def _utt(release: Path, dialog: str, utt_id: str, times, marker: str | None = "F"):
    wav = release / "Session1" / "sentences" / "wav" / dialog / f"{utt_id}.wav"
    extra = {"times": times} if times is not None else {}
    if marker:
        extra["marker_actor"] = marker
    return make_utterance(id=utt_id, audio_path=str(wav), extra=extra)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    rel = tmp_path_factory.mktemp("iemocap") / "IEMOCAP_full_release"
    divx = rel / "Session1" / "dialog" / "avi" / "DivX"
    _video(divx / "Ses01F_impro01.avi")
    divx.joinpath("Ses01F_impro03.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 20)
    return rel


def _manifest(rel: Path) -> Manifest:
    return Manifest([
        _utt(rel, "Ses01F_impro01", "Ses01F_impro01_F000", (0.0, 1.0)),
        _utt(rel, "Ses01F_impro01", "Ses01F_impro01_M000", (1.2, 2.5)),
        _utt(rel, "Ses01F_impro01", "Ses01F_impro01_F001", (2.5, 4.0)),   # runs past the end
        _utt(rel, "Ses01F_impro01", "Ses01F_impro01_F002", (3.5, 4.0)),   # wholly after it
        _utt(rel, "Ses01F_impro01", "Ses01F_impro01_M001", (0.1, 0.2), marker=None),
        _utt(rel, "Ses01F_impro02", "Ses01F_impro02_F000", (0.0, 1.0)),   # no video
        _utt(rel, "Ses01F_impro03", "Ses01F_impro03_F000", (0.0, 1.0)),   # undecodable
    ])


@pytest.fixture(scope="module")
def extracted(release):
    return extract_iemocap_video(_manifest(release))


def _colours(arr: np.ndarray) -> np.ndarray:
    """Mean R, G, B (0..1) per frame: the 3 values after the HOG part."""
    return arr[:, HOG_DIM:HOG_DIM + 3]


def test_frames_halves_and_seconds(extracted):
    m = extracted
    assert m.ids == ["Ses01F_impro01_F000", "Ses01F_impro01_M000", "Ses01F_impro01_F001"]
    f0 = np.load(m["Ses01F_impro01_F000"].extra["visual_path"])
    assert f0.shape == (3, HOG_DIM + 7) and f0.dtype == np.float32
    # F speaks, F wears the markers -> left half (red); frames at 0, 1/3, 2/3 s -> second 0
    np.testing.assert_allclose(_colours(f0), [[200 / 255, 20 / 255, 30 / 255]] * 3, atol=0.04)
    m0 = np.load(m["Ses01F_impro01_M000"].extra["visual_path"])
    # M -> right half (blue); frames 4..7 at 1.33, 1.67, 2.0, 2.33 s -> seconds 1, 1, 2, 2
    expected = [[30 / 255, GREEN[s] / 255, 200 / 255] for s in (1, 1, 2, 2)]
    np.testing.assert_allclose(_colours(m0), expected, atol=0.04)
    f1 = np.load(m["Ses01F_impro01_F001"].extra["visual_path"])
    assert f1.shape[0] == 1  # only the frame at 2.67 s exists of 8..11


def test_written_where_the_visual_extractor_reads(extracted, release):
    u = extracted["Ses01F_impro01_F000"]
    mirror = release / "Session1" / "sentences" / "visual" / "Ses01F_impro01" / "Ses01F_impro01_F000.npy"
    assert Path(u.extra["visual_path"]) == mirror
    bare = dataclasses.replace(u, extra={k: v for k, v in u.extra.items() if k != "visual_path"})
    np.testing.assert_array_equal(Visual().extract(bare), np.load(mirror))


def test_report(extracted, release):
    divx = release / "Session1" / "dialog" / "avi" / "DivX"
    skipped = {(Path(s.path).name, s.item, s.reason.split(" (")[0].split(":")[0]) for s in extracted.report.skipped}
    assert skipped == {
        ("Ses01F_impro01.avi", "Ses01F_impro01_F002", "no video frame inside 3.5..4 s"),
        ("Ses01F_impro01_M001.wav", "Ses01F_impro01_M001", "extra['marker_actor'] is None, expected 'F' or 'M'"),
        ("Ses01F_impro02.avi", "Ses01F_impro02_F000", "dialog video missing"),
        ("Ses01F_impro03.avi", "Ses01F_impro03_F000", "video not decodable"),
    }
    (w,) = extracted.report.warnings
    assert (w.path, w.item, w.reason) == (str(divx / "Ses01F_impro01.avi"), "Ses01F_impro01_F001",
                                          "span ends after the video: 1 of 4 frames")


def test_marker_side_right_and_out_dir(release, tmp_path):
    m = Manifest([_utt(release, "Ses01F_impro01", "Ses01F_impro01_F000", (0.0, 1.0))])
    out = extract_iemocap_video(m, VideoConfig(marker_side="right"), out_dir=tmp_path)
    path = Path(out["Ses01F_impro01_F000"].extra["visual_path"])
    assert path == tmp_path / "Ses01F_impro01" / "Ses01F_impro01_F000.npy"
    assert _colours(np.load(path))[:, 2].min() > 0.7  # now the blue half
    before = os.stat(path).st_mtime_ns
    extract_iemocap_video(m, VideoConfig(marker_side="right"), out_dir=tmp_path)  # kept, not redone
    assert os.stat(path).st_mtime_ns == before


def _hog_reference(img: np.ndarray, cell: int, nbins: int, block: int) -> np.ndarray:
    """HOG written with plain loops, for comparison."""
    h, w = img.shape
    hist = np.zeros((h // cell, w // cell, nbins))
    for y in range(h // cell * cell):
        for x in range(w // cell * cell):
            gx = img[y, x + 1] - img[y, x - 1] if 0 < x < w - 1 else 0.0
            gy = img[y + 1, x] - img[y - 1, x] if 0 < y < h - 1 else 0.0
            ang = np.degrees(np.arctan2(gy, gx)) % 180.0
            hist[y // cell, x // cell, min(int(ang * nbins / 180.0), nbins - 1)] += np.hypot(gx, gy)
    out = []
    for i in range(h // cell - block + 1):
        for j in range(w // cell - block + 1):
            v = hist[i:i + block, j:j + block].ravel()
            v = v / np.sqrt((v ** 2).sum() + 1e-12)
            v = np.minimum(v, 0.2)
            out.append(v / np.sqrt((v ** 2).sum() + 1e-12))
    return np.concatenate(out)


def test_hog_matches_loop_reference():
    img = np.random.default_rng(0).random((24, 40))
    np.testing.assert_allclose(hog(img, cell=8, orientations=6, block=2),
                               _hog_reference(img, 8, 6, 2), rtol=1e-10, atol=1e-12)
    horizontal = np.zeros((32, 32))
    horizontal[16:] = 1.0  # y gradient only: 90 degrees -> bin 4 of 9
    h = hog(horizontal, cell=16, block=1).reshape(4, 9)
    assert np.all(np.delete(h, 4, axis=1) == 0) and h[0, 4] > 0


def test_descriptor_colour_statistics():
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:, :32] = (255, 0, 0)
    d = hog_colour_descriptor(rgb)
    np.testing.assert_allclose(d[HOG_DIM:HOG_DIM + 6], [0.5, 0, 0, 0.5, 0, 0], atol=1e-6)


def test_frame_indices():
    assert frame_indices(1.2, 2.5, 3.0) == [4, 5, 6, 7]
    assert frame_indices(0.1, 0.2, 3.0) == [0]  # shorter than a frame: nearest to the middle


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision installed")
def test_resnet_without_torchvision_is_a_clear_error(release, tmp_path):
    m = Manifest([_utt(release, "Ses01F_impro01", "Ses01F_impro01_F000", (0.0, 1.0))])
    with pytest.raises(ImportError, match="needs torchvision"):
        extract_iemocap_video(m, VideoConfig(descriptor="resnet", checkpoint="x.pth"), out_dir=tmp_path)


@pytest.mark.parametrize("dialog", ["../../escape", "/tmp/escape-abs"])
def test_out_dir_join_refuses_paths_outside_it(release, tmp_path, dialog):
    u = dataclasses.replace(_utt(release, "Ses01F_impro01", "Ses01F_impro01_F000", (0.0, 1.0)),
                            dialog=dialog)
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(OutsideRootError, match=rf"^Ses01F_impro01_F000: dialog {re.escape(repr(dialog))} .* outside {re.escape(str(out))};"):
        extract_iemocap_video(Manifest([u]), out_dir=out)
    assert not (tmp_path / "a" / "escape").exists() and not Path("/tmp/escape-abs").exists()
