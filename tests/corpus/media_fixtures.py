"""Tiny real media files for corpus tests, encoded with imageio-ffmpeg's ffmpeg.

Colours and tones are chosen so tests can check, independently of the code under test, which
file, which half of the frame and which second of a video a result came from.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from workbench.corpus.media import ffmpeg_exe


def tone(freq: float, seconds: float, sr: int) -> np.ndarray:
    """A 0.3-amplitude sine, float32 (samples,)."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_video(path: Path, frames: np.ndarray, fps: float, audio: np.ndarray | None = None,
                sr: int = 48000) -> Path:
    """Encode uint8 (n, h, w, 3) RGB frames (+ optional mono audio) to ``path``.

    ``.mp4``: H.264 + AAC (as MELD's clips); ``.avi``: MPEG-4 part 2 (as IEMOCAP's DivX).
    """
    n, h, w, _ = frames.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-"]
    wav = None
    if audio is not None:
        wav = path.with_suffix(".src.wav")
        sf.write(wav, audio, sr)
        cmd += ["-i", str(wav)]
    if path.suffix == ".mp4":
        cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
        if audio is not None:
            cmd += ["-c:a", "aac", "-b:a", "64k"]
    else:
        cmd += ["-c:v", "mpeg4", "-q:v", "2", "-pix_fmt", "yuv420p"]
        if audio is not None:
            cmd += ["-c:a", "pcm_s16le"]
    cmd.append(str(path))
    subprocess.run(cmd, input=frames.tobytes(), check=True, capture_output=True)
    if wav is not None:
        wav.unlink()
    return path


def flat_frames(n: int, h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    frames = np.empty((n, h, w, 3), np.uint8)
    frames[...] = rgb
    return frames


def peak_frequency(y: np.ndarray, sr: int) -> float:
    """Frequency (Hz) of the largest FFT bin of a Hann-windowed signal."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spec) * sr / len(y))
