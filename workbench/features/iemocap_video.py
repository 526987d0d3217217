"""Per-utterance visual descriptors from IEMOCAP's split-screen dialog videos.

``extract_iemocap_video(manifest)`` reads ``<SessionN>/dialog/avi/DivX/<dialog>.avi`` once per
dialog, samples frames at 3 fps inside each utterance's time span (``extra["times"]``, the
EmoEvaluation start/end in the dialog), crops the speaking actor's half of the split screen and
writes one float32 array ``(frames, dim)`` per utterance, where the ``visual`` feature extractor
(:mod:`workbench.features.visual`) reads it: by default the ``sentences/visual/`` mirror of the
wav path; with ``out_dir`` under ``out_dir/<dialog>/<utt>.npy`` and named in
``extra["visual_path"]`` (set in both cases).

Which half? Each IEMOCAP dialog video shows both actors side by side. ASSUMPTION: the actor
wearing the motion-capture markers (the letter after ``SesNN`` in the id, kept by the IEMOCAP
loader as ``extra["marker_actor"]``) is on the LEFT, the other actor on the right — the rule
public IEMOCAP video preprocessing uses. It is not stated in the corpus documentation, so it
is a parameter (``marker_side="right"`` flips it); check a few frames of your copy (e.g.
:func:`speaker_side` on a dialog whose actors you can tell apart) before relying on it.

Descriptors (no downloaded weights):

* ``"hog"`` (default): the half is scaled to ``size`` x ``size`` (aspect not kept), then a
  histogram of oriented gradients of its grey image (unsigned orientations, ``cell`` px
  cells, ``block`` x ``block`` cell blocks, L2-Hys normalised; :func:`hog`), followed by the
  mean and standard deviation of R, G, B (0..1) and the mean gradient magnitude. With the
  defaults (64 px, 16 px cells, 9 orientations, 2x2 blocks) dim = 3*3*2*2*9 + 7 = 331. One
  numpy implementation, so the numbers do not depend on which optional packages are installed.
* ``"resnet"``: the penultimate layer of a torchvision ResNet loaded from a LOCAL checkpoint
  file the user supplies (``checkpoint=``; ``arch`` names the architecture); needs
  ``torchvision``, imported only then. Halves are scaled to 224 x 224 and ImageNet-normalised.

Nothing is dropped silently: utterances without ``times``/``marker_actor``, with a missing or
undecodable video, or with no frame inside their span are left out of the returned manifest
and listed in ``manifest.report``; spans running past the end of the video keep the frames
that exist, with a warning.

>>> frame_indices(0.0, 1.0, 3.0), frame_indices(0.5, 0.6, 3.0), frame_indices(0.3, 0.9, 3.0)
([0, 1, 2], [2], [1, 2])
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np

from workbench.corpus.manifest import Manifest, OutsideRootError, Reporter, Utterance, inside_root
from workbench.corpus.media import MediaError, iter_frames
from workbench.features.visual import visual_path
from workbench.io import atomic_write

Side = Literal["left", "right"]
_EPS = 1e-9  # slack for float time -> frame index conversions (0.1 * 3 is 0.30000000000000004)


@dataclass(frozen=True)
class VideoConfig:
    """How frames are sampled and described (the defaults give 331-dim HOG + colour at 3 fps)."""

    fps: float = 3.0
    descriptor: Literal["hog", "resnet"] = "hog"
    size: int | None = None  # side of the scaled half in px; None: 64 (hog) or 224 (resnet)
    cell: int = 16
    orientations: int = 9
    block: int = 2
    marker_side: Side = "left"  # where the marker-wearing actor sits (see module doc)
    checkpoint: str | None = None  # local torchvision ResNet state dict, for descriptor="resnet"
    arch: str = "resnet18"

    @property
    def half_size(self) -> int:
        return self.size or (224 if self.descriptor == "resnet" else 64)


# --------------------------------------------------------------------------- geometry
def frame_indices(start: float, end: float, fps: float) -> list[int]:
    """Indices ``k`` of the frames at ``k / fps`` with ``start <= k / fps < end``.

    A span too short to contain one gets the frame nearest its midpoint, so every utterance
    has at least one frame.
    """
    first = math.ceil(start * fps - _EPS)
    stop = math.ceil(end * fps - _EPS)
    if stop > first:
        return list(range(first, stop))
    return [max(0, round((start + end) / 2 * fps))]


def speaker_side(utt: Utterance, marker_side: Side = "left") -> Side:
    """The half of the split screen showing ``utt``'s speaker.

    >>> from workbench.testing.dummies import make_utterance
    >>> u = make_utterance(id="Ses01F_impro01_M000", extra={"marker_actor": "F"})
    >>> speaker_side(u), speaker_side(u, marker_side="right")
    ('right', 'left')
    """
    marker = (utt.extra or {}).get("marker_actor")
    if marker not in ("F", "M"):
        raise ValueError(f"{utt.id}: extra['marker_actor'] is {marker!r}, expected 'F' or 'M' "
                         "(use a manifest from prepare_iemocap)")
    letter = utt.speaker[-1:]
    if letter not in ("F", "M"):
        raise ValueError(f"{utt.id}: speaker {utt.speaker!r} does not end in F or M")
    other: Side = "right" if marker_side == "left" else "left"
    return marker_side if letter == marker else other


def dialog_video_path(utt: Utterance) -> Path:
    """``<SessionN>/dialog/avi/DivX/<dialog>.avi`` for an utterance whose wav is under
    ``<SessionN>/sentences/wav/<dialog>/``.

    >>> from workbench.testing.dummies import make_utterance
    >>> u = make_utterance(audio_path="R/Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav")
    >>> dialog_video_path(u).as_posix()
    'R/Session1/dialog/avi/DivX/Ses01F_impro01.avi'
    """
    wav = Path(utt.audio_path)
    if len(wav.parts) < 4 or wav.parts[-4:-2] != ("sentences", "wav"):
        raise ValueError(f"{utt.id}: audio path {wav} is not <Session>/sentences/wav/<dialog>/<utt>.wav")
    return wav.parents[3] / "dialog" / "avi" / "DivX" / f"{wav.parent.name}.avi"


# --------------------------------------------------------------------------- descriptors
def hog(gray: np.ndarray, cell: int = 16, orientations: int = 9, block: int = 2) -> np.ndarray:
    """Histogram of oriented gradients of a 2-D image -> 1-D float64 vector.

    Gradients by central differences (0 on the border rows/columns), unsigned orientation in
    [0, 180) degrees with the y axis pointing down the image, each pixel's magnitude added to
    one orientation bin (no interpolation) of its ``cell`` x ``cell`` cell (pixels beyond the
    last whole cell are ignored). Each ``block`` x ``block`` group of cells, stepped by one
    cell, is L2-Hys normalised (L2, clip at 0.2, L2 again). Length:
    ``(H // cell - block + 1) * (W // cell - block + 1) * block**2 * orientations``.

    >>> img = np.zeros((32, 32)); img[:, 16:] = 1.0          # a vertical edge: x gradient only
    >>> h = hog(img, cell=16, block=1).reshape(4, 9)
    >>> bool(np.all(h[:, 1:] == 0)), bool(h[0, 0] > 0)
    (True, True)
    """
    g = np.asarray(gray, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"hog: expected a 2-D image, got shape {g.shape}")
    rows, cols = g.shape[0] // cell, g.shape[1] // cell
    if rows < block or cols < block:
        raise ValueError(f"hog: image {g.shape} too small for {block}x{block} blocks of {cell}px cells")
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    gx[:, 1:-1] = g[:, 2:] - g[:, :-2]
    gy[1:-1, :] = g[2:, :] - g[:-2, :]
    g_mag = np.hypot(gx, gy)[: rows * cell, : cols * cell]
    angle = (np.degrees(np.arctan2(gy, gx)) % 180.0)[: rows * cell, : cols * cell]
    bins = np.minimum((angle * orientations / 180.0).astype(np.int64), orientations - 1)
    r = np.arange(rows * cell)[:, None] // cell
    c = np.arange(cols * cell)[None, :] // cell
    flat = (r * cols + c) * orientations + bins
    hist = np.bincount(flat.ravel(), weights=g_mag.ravel(), minlength=rows * cols * orientations)
    hist = hist.reshape(rows, cols, orientations)
    win = np.lib.stride_tricks.sliding_window_view(hist, (block, block), axis=(0, 1))
    v = win.transpose(0, 1, 3, 4, 2).reshape(rows - block + 1, cols - block + 1, -1)
    v = v / np.sqrt(np.sum(v * v, axis=-1, keepdims=True) + 1e-12)
    v = np.minimum(v, 0.2)
    v = v / np.sqrt(np.sum(v * v, axis=-1, keepdims=True) + 1e-12)
    return v.ravel()


def hog_colour_descriptor(rgb: np.ndarray, cell: int = 16, orientations: int = 9,
                          block: int = 2) -> np.ndarray:
    """HOG of the grey image, then mean and std of R, G, B and the mean gradient magnitude.

    rgb: uint8 (H, W, 3). Colours are scaled to 0..1 and the grey image is the ITU-R BT.601
    luma of those. Returns float32 (hog_dim + 7,).
    """
    x = rgb.astype(np.float64) / 255.0
    gray = x @ np.array([0.299, 0.587, 0.114])
    gy, gx = np.gradient(gray)
    stats = np.concatenate([x.reshape(-1, 3).mean(0), x.reshape(-1, 3).std(0),
                            [np.hypot(gx, gy).mean()]])
    return np.concatenate([hog(gray, cell, orientations, block), stats]).astype(np.float32)


def _resnet_descriptor(cfg: VideoConfig) -> Callable[[list[np.ndarray]], np.ndarray]:
    """A batch function (list of uint8 (S, S, 3)) -> float32 (n, features) from a local ResNet."""
    try:
        import torch
        import torchvision
    except ImportError as e:
        raise ImportError("descriptor='resnet' needs torchvision (pip install torchvision "
                          "matching your torch); the default descriptor='hog' needs nothing") from e
    if not cfg.checkpoint:
        raise ValueError("descriptor='resnet' needs checkpoint= (a local .pth state dict file)")
    path = Path(cfg.checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"ResNet checkpoint {path} does not exist")
    factory = getattr(torchvision.models, cfg.arch, None)
    if factory is None or not cfg.arch.startswith("resnet"):
        raise ValueError(f"arch {cfg.arch!r} is not a torchvision ResNet (resnet18, resnet50 ...)")
    model = factory(weights=None)  # weights=None: never download; the file supplies them
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path} is not a {cfg.arch} state dict: {str(e)[:300]}") from e
    model.fc = torch.nn.Identity()
    model.eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def describe(crops: list[np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
        with torch.inference_mode():
            return model((x - mean) / std).numpy().astype(np.float32)

    return describe


def make_descriptor(cfg: VideoConfig) -> Callable[[list[np.ndarray]], np.ndarray]:
    """The batch descriptor function ``cfg`` names: list of uint8 (S, S, 3) -> (n, dim)."""
    if cfg.descriptor == "hog":
        return lambda crops: np.stack([hog_colour_descriptor(c, cfg.cell, cfg.orientations, cfg.block)
                                       for c in crops])
    if cfg.descriptor == "resnet":
        return _resnet_descriptor(cfg)
    raise ValueError(f"descriptor {cfg.descriptor!r}: use 'hog' or 'resnet'")


# --------------------------------------------------------------------------- extraction
def _output_path(utt: Utterance, out_dir: Path | None) -> Path:
    if out_dir is not None:
        rel = Path(utt.dialog or "unknown") / f"{utt.id}.npy"
        # dialog and id are data: "../" or an absolute dialog would write anywhere
        if not inside_root(out_dir / rel, out_dir):
            raise OutsideRootError(f"{utt.id}: dialog {utt.dialog!r} and id put the visual file at "
                                   f"{str(rel)!r}, outside {out_dir}; fix the manifest's dialog/id")
        return out_dir / rel
    # the extractor's own convention
    return visual_path(dataclasses.replace(utt, extra={k: v for k, v in utt.extra.items() if k != "visual_path"}))


def _save(path: Path, arr: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save(path) would append ".npy"
            np.save(f, arr)

    atomic_write(path, write)


def extract_iemocap_video(
    manifest: Manifest,
    config: VideoConfig | None = None,
    *,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    strict: bool = False,
    progress: bool = False,
) -> Manifest:
    """Write per-utterance visual descriptors and return the manifest of utterances that have one.

    manifest: from ``prepare_iemocap`` (needs ``extra["times"]`` and ``extra["marker_actor"]``
    and wavs under ``<SessionN>/sentences/wav/``). config: sampling and descriptor. out_dir:
    where arrays go (default: the ``sentences/visual/`` mirror of each wav). overwrite: recompute
    existing arrays (default: keep them). strict: raise ValueError at the first problem.
    An utterance whose dialog/id would put its file outside ``out_dir`` (``../``, an absolute
    dialog) raises :class:`OutsideRootError` before anything is written.
    The returned manifest carries ``extra["visual_path"]`` and its ``report`` lists what was
    left out and why.
    """
    cfg = config or VideoConfig()
    if cfg.fps <= 0:
        raise ValueError(f"fps must be positive, got {cfg.fps}")
    if cfg.marker_side not in ("left", "right"):
        raise ValueError(f"marker_side must be 'left' or 'right', got {cfg.marker_side!r}")
    out = Path(out_dir) if out_dir is not None else None
    rep = Reporter(strict)
    describe: Callable[[list[np.ndarray]], np.ndarray] | None = None

    by_video: dict[Path, list[tuple[Utterance, Side, list[int], Path]]] = defaultdict(list)
    done: dict[str, Path] = {}
    for u in manifest:
        times = (u.extra or {}).get("times")
        try:
            side = speaker_side(u, cfg.marker_side)
            video = dialog_video_path(u)
            if not times or len(times) != 2 or not times[1] > times[0]:
                raise ValueError(f"{u.id}: extra['times'] is {times!r}, expected (start, end)")
        except ValueError as e:
            rep.skip(u.audio_path, None, u.id, str(e).removeprefix(f"{u.id}: "))
            continue
        target = _output_path(u, out)
        if target.is_file() and not overwrite:
            done[u.id] = target
            continue
        by_video[video].append((u, side, frame_indices(float(times[0]), float(times[1]), cfg.fps), target))

    videos = sorted(by_video)
    if progress:
        from tqdm.auto import tqdm

        videos = tqdm(videos, desc="IEMOCAP video")
    for video in videos:
        items = by_video[video]
        if not video.is_file():
            for u, *_ in items:
                rep.skip(video, None, u.id, "dialog video missing")
            continue
        if describe is None:
            describe = make_descriptor(cfg)
        try:
            got = _describe_dialog(video, items, cfg, describe)
        except MediaError as e:
            for u, *_ in items:
                rep.skip(video, None, u.id, f"video not decodable: {str(e).removeprefix(f'{video}: ')}")
            continue
        for u, _side, wanted, target in items:
            rows = got.get(u.id, [])
            if not rows:
                t0, t1 = u.extra["times"]
                rep.skip(video, None, u.id, f"no video frame inside {t0:g}..{t1:g} s "
                         f"(frames {wanted[0]}..{wanted[-1]} at {cfg.fps:g} fps)")
                continue
            if len(rows) < len(wanted):
                rep.bad(video, None, u.id, f"span ends after the video: {len(rows)} of "
                        f"{len(wanted)} frames")
            _save(target, np.stack(rows).astype(np.float32))
            done[u.id] = target

    kept = [dataclasses.replace(u, extra={**u.extra, "visual_path": os.path.abspath(done[u.id])})
            for u in manifest if u.id in done]
    return Manifest(kept, report=rep.report)


def _describe_dialog(video: Path, items: Sequence[tuple[Utterance, Side, list[int], Path]],
                     cfg: VideoConfig, describe: Callable[[list[np.ndarray]], np.ndarray]
                     ) -> dict[str, list[np.ndarray]]:
    """Stream the dialog's frames once; return utterance id -> descriptor per frame, in order."""
    s = cfg.half_size
    needs: dict[int, set[Side]] = defaultdict(set)
    for _u, side, wanted, _t in items:
        for k in wanted:
            needs[k].add(side)
    last = max(needs)
    features: dict[tuple[int, Side], np.ndarray] = {}
    for k, frame in enumerate(iter_frames(video, cfg.fps, 2 * s, s)):
        if k in needs:
            sides = sorted(needs[k])
            halves = [frame[:, :s] if side == "left" else frame[:, s:] for side in sides]
            for side, vec in zip(sides, describe(halves)):
                features[(k, side)] = vec
        if k >= last:
            break  # closes the pipe; ffmpeg stops decoding the rest of the dialog
    return {u.id: [features[(k, side)] for k in wanted if (k, side) in features]
            for u, side, wanted, _t in items}
