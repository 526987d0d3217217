"""ffmpeg helpers shared by the video-bearing corpora (MELD mp4 clips, IEMOCAP dialog avi).

ffmpeg comes from the ``imageio-ffmpeg`` wheel (a static binary, no system install); a system
``ffmpeg`` on PATH is the fallback and ``WORKBENCH_FFMPEG`` overrides both. Everything goes
through ``subprocess`` with raw pipes: audio is written as 16-bit PCM wav, video frames are
read as packed RGB bytes, so no OpenCV or PyAV is needed.

Every failure raises :class:`MediaError` naming the file and ffmpeg's own last message line,
so a loader can put it in its skip report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import numpy as np

from workbench.errors import WorkbenchError
from workbench.io import atomic_write


class MediaError(WorkbenchError, RuntimeError):
    """A media file could not be probed or decoded; the message names the file."""


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: ``$WORKBENCH_FFMPEG``, imageio-ffmpeg's, or ``ffmpeg`` on PATH."""
    env = os.environ.get("WORKBENCH_FFMPEG")
    if env:
        return env
    try:
        import imageio_ffmpeg
    except ImportError:
        imageio_ffmpeg = None
    if imageio_ffmpeg is not None:
        return imageio_ffmpeg.get_ffmpeg_exe()
    found = shutil.which("ffmpeg")
    if found:
        return found
    raise MediaError("no ffmpeg found: `pip install imageio-ffmpeg` (or put ffmpeg on PATH, "
                     "or set WORKBENCH_FFMPEG)")


def _last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def extract_audio(src: str | Path, dst: str | Path, sr: int = 16000) -> Path:
    """Decode the first audio stream of ``src`` to a mono 16-bit wav at ``sr`` Hz at ``dst``.

    The wav is written atomically (temp file + rename): an interrupted run never leaves a
    truncated file that a later run would take for a cached result.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise MediaError(f"{src}: media file does not exist")

    def write(tmp: Path) -> None:
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
               "-i", str(src), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sr),
               "-c:a", "pcm_s16le", "-f", "wav", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0:
            msg = _last_line(proc.stderr)
            if "matches no streams" in msg:
                msg = "no audio stream"
            raise MediaError(f"{src}: cannot decode audio ({msg})")
        if tmp.stat().st_size <= 44:  # a bare wav header: the stream held no samples
            raise MediaError(f"{src}: audio stream holds no samples")

    return atomic_write(dst, write)


def iter_frames(path: str | Path, fps: float, width: int, height: int,
                start: float = 0.0, duration: float | None = None) -> Iterator[np.ndarray]:
    """Frames of ``path`` resampled to ``fps`` and scaled to ``width`` x ``height``.

    Yields uint8 arrays of shape (height, width, 3) (RGB). Frame ``k`` shows time
    ``start + k / fps`` (ffmpeg's ``fps`` filter takes the input frame shown at that time).
    Decoding streams through a pipe, so a long dialog never sits in memory. Raises
    :class:`MediaError` when ffmpeg fails (undecodable file); a file with no frames in the
    window simply yields nothing.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: video file does not exist")
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
    if start > 0:
        cmd += ["-ss", f"{start:.6f}"]
    cmd += ["-i", str(path)]
    if duration is not None:
        cmd += ["-t", f"{duration:.6f}"]
    # scale before fps would scale frames that fps then drops; fps first is cheaper
    cmd += ["-map", "0:v:0", "-an", "-vf", f"fps={fps},scale={width}:{height}:flags=area",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    frame_bytes = width * height * 3
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        while True:
            buf = proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            yield np.frombuffer(buf, np.uint8).reshape(height, width, 3)
    finally:
        if proc.poll() is None and proc.stdout is not None:
            proc.stdout.close()  # the consumer stopped early: let ffmpeg exit on EPIPE
        _, stderr = proc.communicate()
    if proc.returncode not in (0, None) and not (proc.returncode < 0 or b"Broken pipe" in stderr):
        raise MediaError(f"{path}: cannot decode video ({_last_line(stderr)})")
