"""Frame-level acoustic features: MFCC-120, MFCC-40, Xu's frame-34 and a log power spectrogram.

- ``mfcc120`` (AMH, unimodal_audio): 40 MFCC + deltas + delta-deltas per 10 ms, 25 ms
  window. The extractor runs a batched torch path (``torch.stft`` + librosa's mel filters +
  DCT + deltas by convolution) over clips of similar length, on CUDA when there is one. It reproduces
  ``librosa.feature.mfcc`` / ``librosa.feature.delta`` (see :func:`librosa_mfcc120`, the
  per-file reference) to float32 rounding on every frame, edges included: zero padding of a
  batch equals librosa's constant ``center`` padding, the 80 dB floor is taken per clip over
  its own frames, and librosa's ``mode="interp"`` delta edges equal the first/last interior
  value (a degree-d polynomial's d-th derivative is constant), which the torch path copies.
- ``mfcc40`` (MCSAN, Sun et al. 2021, sec. 3.2): the same 40 MFCC per 10 ms, 25 ms window,
  without deltas, and only the first ``max_frames`` (1,000 = 10 s) frames: the same torch path
  with the deltas skipped.
- ``frame34`` (Xu et al.): pyAudioAnalysis's 34 short-term features per 20 ms frame at a
  10 ms hop, vectorised over frames with numpy (see :func:`frame34_features`).
- ``spectrogram257``: 10*log10 power of a 512-point STFT, 25 ms Hann window, 10 ms hop,
  clamped at exactly ``floor_db`` (-100 dB; see :func:`power_to_db_floored`), of the first
  10 s of audio zero-padded to 10 s (Krishna and Patil, sec. 5); ``valid_length`` tells the
  frames of real audio from the padding.

Z-normalisation (global or per speaker) is not part of any extractor: it needs statistics of
a whole corpus (or of a training fold), so it is applied after the cache loads, by
:func:`workbench.features.normalise.normalise`. Keeping it out of the extraction keeps cache
entries per utterance, valid for any fold.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from workbench.corpus.manifest import Utterance
from workbench.features.audio_io import audio_frames, load_audio
from workbench.features.base import Extractor, ExtractorConfig, register_extractor

_EPS = 1e-8  # pyAudioAnalysis's eps


# --------------------------------------------------------------------------- MFCC-120
@dataclass(frozen=True)
class Mfcc120Config(ExtractorConfig):
    """librosa-compatible MFCC settings; ``device`` and ``batch_size`` do not change values."""

    sample_rate: int = 16000
    n_mfcc: int = 40
    n_mels: int = 40
    n_fft: int = 512
    win_length: int = 400  # 25 ms at 16 kHz
    hop_length: int = 160  # 10 ms
    fmin: float = 0.0
    fmax: float | None = None
    top_db: float | None = 80.0
    delta_width: int = 9
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda"
    batch_size: int = 16  # measured fastest on 2 CPU cores (8, 16, 32, 64 tried)

    def to_json(self) -> str:
        # Runtime-only fields stay out of the cache key: a GPU run reuses a CPU run's cache.
        d = json.loads(super().to_json())
        d.pop("device")
        d.pop("batch_size")
        return json.dumps(d, sort_keys=True)


def librosa_mfcc120(y: np.ndarray, cfg: Mfcc120Config | None = None) -> np.ndarray:
    """Reference per-clip MFCC-120 with librosa: float32 (frames, 3 * n_mfcc)."""
    import librosa

    cfg = cfg or Mfcc120Config()
    mel = librosa.feature.melspectrogram(
        y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        window="hann", center=True, pad_mode="constant", n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax,
    )
    m = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=cfg.top_db), n_mfcc=cfg.n_mfcc)
    d1 = librosa.feature.delta(m, width=cfg.delta_width, order=1)
    d2 = librosa.feature.delta(m, width=cfg.delta_width, order=2)
    return np.concatenate([m, d1, d2], axis=0).T.astype(np.float32)


@lru_cache(maxsize=8)
def _mfcc_constants(cfg: Mfcc120Config) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mel filters (n_mels, 1 + n_fft/2), DCT-II ortho (n_mfcc, n_mels), delta and delta-delta kernels)."""
    import librosa
    import scipy.fft
    from scipy.signal import savgol_coeffs

    mel = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
    dct = scipy.fft.dct(np.eye(cfg.n_mels), type=2, norm="ortho", axis=0)[: cfg.n_mfcc]
    # librosa.feature.delta is savgol_filter(deriv=order, polyorder=order); "dot" = correlation kernel.
    k1 = savgol_coeffs(cfg.delta_width, 1, deriv=1, use="dot")
    k2 = savgol_coeffs(cfg.delta_width, 2, deriv=2, use="dot")
    return mel.astype(np.float32), dct.astype(np.float32), k1.astype(np.float32), k2.astype(np.float32)


def device_name(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; other values pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def torch_mfcc120(ys: Sequence[np.ndarray], cfg: Mfcc120Config | None = None, device: str = "cpu",
                  deltas: bool = True) -> list[np.ndarray]:
    """MFCC-120 of clips padded into one batch: list of float32 (frames_i, 3 * n_mfcc);
    with ``deltas=False`` the static MFCC only, (frames_i, n_mfcc) (:class:`Mfcc40`).

    With deltas each clip needs at least ``delta_width`` frames ((delta_width - 1) * hop
    samples), as librosa's interpolating delta does; :class:`Mfcc120` pads short clips to that.
    """
    import torch

    cfg = cfg or Mfcc120Config()
    mel_np, dct_np, k1_np, k2_np = _mfcc_constants(cfg)
    half = cfg.delta_width // 2
    lengths = [len(y) for y in ys]
    n_frames = torch.tensor([1 + n // cfg.hop_length for n in lengths], device=device)
    if deltas and int(n_frames.min()) < cfg.delta_width:
        raise ValueError(f"a clip of {min(lengths)} samples is shorter than {cfg.delta_width} frames")
    x = torch.zeros(len(ys), max(lengths), dtype=torch.float32)
    for i, y in enumerate(ys):
        x[i, : len(y)] = torch.from_numpy(np.asarray(y, dtype=np.float32))
    x = x.to(device)
    window = torch.hann_window(cfg.win_length, periodic=True, device=device)
    spec = torch.stft(x, cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=True,
                      pad_mode="constant", return_complex=True)  # (B, 1 + n_fft/2, T)
    power = spec.real.square()
    power.addcmul_(spec.imag, spec.imag)  # |X|^2 without a third temporary
    mel = torch.matmul(torch.from_numpy(mel_np).to(device), power)  # (B, n_mels, T)
    db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
    t_idx = torch.arange(db.shape[-1], device=device)
    valid = t_idx[None, :] < n_frames[:, None]  # (B, T)
    if cfg.top_db is not None:
        # librosa floors each clip at (its own max - top_db); padded frames must not count.
        peak = db.masked_fill(~valid[:, None, :], float("-inf")).amax(dim=(1, 2))
        db = torch.maximum(db, (peak - cfg.top_db)[:, None, None])
    mfcc = torch.matmul(torch.from_numpy(dct_np).to(device), db)  # (B, n_mfcc, T)
    if not deltas:
        static = mfcc.transpose(1, 2).cpu().numpy()  # (B, T, n_mfcc)
        return [static[i, : int(n)] for i, n in enumerate(n_frames.tolist())]
    B, C, T = mfcc.shape
    flat = mfcc.reshape(B * C, 1, T)
    # Interior deltas by correlation; edge frames copy the nearest interior value (see module doc).
    src = torch.clamp(t_idx[None, :], min=half)
    src = torch.minimum(src, (n_frames - 1 - half)[:, None]) - half  # (B, T) index into the valid conv output
    gather_idx = src[:, None, :].expand(B, C, T)
    kernels = torch.from_numpy(np.stack([k1_np, k2_np])).to(device).view(2, 1, -1)
    inner = torch.nn.functional.conv1d(flat, kernels).view(B, C, 2, -1)  # one call for both orders
    feats = torch.empty(B, T, 3 * C, device=device)  # written in place: no concatenated copy
    feats[:, :, :C] = mfcc.transpose(1, 2)
    for j in range(2):
        feats[:, :, (j + 1) * C : (j + 2) * C] = torch.gather(inner[:, :, j], 2, gather_idx).transpose(1, 2)
    feats = feats.cpu().numpy()  # (B, T, 3 * n_mfcc)
    return [feats[i, : int(n)] for i, n in enumerate(n_frames.tolist())]


def _load_many(utts: Sequence[Utterance], sr: int, min_seconds: float) -> list[np.ndarray]:
    # Decoding releases the GIL inside libsndfile/soxr, so a few threads overlap I/O and compute.
    if len(utts) < 4:
        return [load_audio(u, sr, min_seconds) for u in utts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda u: load_audio(u, sr, min_seconds), utts))


@register_extractor("mfcc120")
class Mfcc120(Extractor):
    """40 MFCC + delta + delta-delta per 10 ms (25 ms Hann window, 40 mel bands, 80 dB floor).

    The input of AMH (Yoon et al. 2020, sec. 4.2). Batched on torch; see the module docstring for
    why it equals librosa. Output float32 (frames, 120), frames = 1 + samples // 160.
    """

    config_cls = Mfcc120Config
    preparation = {"normalise": "global"}
    cpu_preparation = {"pool": 4, "normalise": "speaker"}
    source = "audio"
    batched = True  # the cache hands it many utterances at once instead of a process pool
    with_deltas = True  # Mfcc40 reuses this path without them

    @property
    def batch_size(self) -> int:  # the config's: it does not change the values
        return self.config.batch_size

    @property
    def frame_seconds(self) -> float:
        return self.config.hop_length / self.config.sample_rate

    @property
    def dim(self) -> int:
        return 3 * self.config.n_mfcc

    @property
    def min_seconds(self) -> float:
        return (self.config.delta_width - 1) * self.config.hop_length / self.config.sample_rate

    def extract(self, utt: Utterance) -> np.ndarray:
        return self.extract_batch([utt])[0]

    def extract_batch(self, utts: Sequence[Utterance]) -> list[np.ndarray]:
        ys = _load_many(utts, self.config.sample_rate, self.min_seconds)
        return self.compute(ys)

    def compute(self, ys: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Features of already-loaded clips, batched by similar length (order preserved)."""
        import torch

        device = device_name(self.config.device)
        order = np.argsort([len(y) for y in ys], kind="stable")
        out: list[np.ndarray | None] = [None] * len(ys)
        with torch.inference_mode():
            for b in range(0, len(order), self.config.batch_size):
                idx = order[b : b + self.config.batch_size]
                for i, f in zip(idx, torch_mfcc120([ys[i] for i in idx], self.config, device, self.with_deltas)):
                    out[i] = f
        return out  # type: ignore[return-value]


# --------------------------------------------------------------------------- MFCC-40
@dataclass(frozen=True)
class Mfcc40Config(Mfcc120Config):
    """MFCC-120's settings (``delta_width`` unused) plus the cap on the sequence:
    ``max_frames`` keeps the first frames of each utterance (None: all of them)."""

    max_frames: int | None = 1000

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"extractor 'mfcc40': max_frames must be >= 1 or None, got {self.max_frames}")


@register_extractor("mfcc40")
class Mfcc40(Mfcc120):
    """40 MFCC per 10 ms (25 ms window), no deltas, first 1,000 frames: float32 (min(frames, 1000), 40).

    MCSAN's input (Sun et al. 2021, sec. 3.2: "40-dimensional MFCC ... window size and hop
    size are set to 25 ms and 10 ms ... The max length of the MFCC feature sequence is set to
    1000"). The paper does not say which 1,000 frames; a maximum length of a feature sequence
    truncates its end, so the first 10 s are kept. The crop is taken after the MFCC of the
    whole clip (as a cap on the feature sequence), so the 80 dB floor still sees every frame.
    The same torch path as :class:`Mfcc120`, with the deltas skipped.
    """

    config_cls = Mfcc40Config
    preparation = {"normalise": "global"}  # Sun et al. z-normalise (sec. 3.2)
    cpu_preparation = {"pool": 4, "normalise": "speaker"}
    with_deltas = False

    @property
    def dim(self) -> int:
        return self.config.n_mfcc

    @property
    def min_seconds(self) -> float:
        return 0.0  # no delta context: any non-empty clip has a frame

    def compute(self, ys: Sequence[np.ndarray]) -> list[np.ndarray]:
        cap = self.config.max_frames
        return [f if cap is None else f[:cap] for f in super().compute(ys)]


# --------------------------------------------------------------------------- frame-34
@dataclass(frozen=True)
class Frame34Config(ExtractorConfig):
    sample_rate: int = 16000
    win_seconds: float = 0.020
    hop_seconds: float = 0.010


def _block_entropy(x: np.ndarray, n_blocks: int = 10) -> np.ndarray:
    """pyAudioAnalysis energy_entropy / spectral_entropy over rows of x: entropy (bits) of block energies."""
    sub = x.shape[1] // n_blocks
    total = np.sum(x**2, axis=1, keepdims=True)
    blocks = np.sum(x[:, : sub * n_blocks].reshape(x.shape[0], n_blocks, sub) ** 2, axis=2)
    s = blocks / (total + _EPS)
    return -np.sum(s * np.log2(s + _EPS), axis=1)


@lru_cache(maxsize=4)
def _pyaa_filters(sr: int, num_fft: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pyAudioAnalysis's 40-band MFCC filterbank and its chroma bin map, as it defines them.

    Kept bug-for-bug: the filterbank places bin k at k * sr / num_fft Hz (twice its true
    frequency), chroma pitch classes are mapped by "last bin wins" assignment and divided by
    a per-bin count indexed by pitch number. Xu et al.'s features are these.
    """
    lowfreq, linc, logsc, n_lin, n_log = 133.33, 200 / 3, 1.0711703, 13, 27
    freqs = np.zeros(n_lin + n_log + 2)
    freqs[:n_lin] = lowfreq + np.arange(n_lin) * linc
    freqs[n_lin:] = freqs[n_lin - 1] * logsc ** np.arange(1, n_log + 3)
    heights = 2.0 / (freqs[2:] - freqs[:-2])
    fbank = np.zeros((n_lin + n_log, num_fft))
    nfreqs = np.arange(num_fft) / (1.0 * num_fft) * sr
    for i in range(n_lin + n_log):
        lo, ce, hi = freqs[i], freqs[i + 1], freqs[i + 2]
        lid = np.arange(np.floor(lo * num_fft / sr) + 1, np.floor(ce * num_fft / sr) + 1, dtype=int)
        rid = np.arange(np.floor(ce * num_fft / sr) + 1, np.floor(hi * num_fft / sr) + 1, dtype=int)
        lid, rid = lid[lid < num_fft], rid[rid < num_fft]
        fbank[i][lid] = heights[i] / (ce - lo) * (nfreqs[lid] - lo)
        fbank[i][rid] = heights[i] / (hi - ce) * (hi - nfreqs[rid])
    # Chroma: pitch number of every FFT bin relative to A0 = 27.5 Hz.
    bin_hz = (np.arange(num_fft) + 1) * sr / (2 * num_fft)
    chroma = np.round(12.0 * np.log2(bin_hz / 27.5)).astype(int)
    per = np.zeros(num_fft)
    for u in np.unique(chroma):
        per[chroma == u] = np.sum(chroma == u)
    if chroma.max() >= num_fft:
        raise ValueError(f"frame34: a {num_fft}-bin spectrum at {sr} Hz is outside pyAudioAnalysis's chroma range")
    # ``C[chroma] = spec`` with repeated indices keeps the last bin of each pitch number.
    last_bin = np.full(num_fft, -1)
    for b, c in enumerate(chroma):
        last_bin[c] = b
    return fbank, last_bin, per[chroma]


def frame34_features(y: np.ndarray, sr: int = 16000, win: int = 320, step: int = 160) -> np.ndarray:
    """pyAudioAnalysis ``ShortTermFeatures.feature_extraction`` (no deltas): float32 (frames, 34).

    Columns: zcr, energy, energy_entropy, spectral_centroid, spectral_spread,
    spectral_entropy, spectral_flux, spectral_rolloff, mfcc_1..13, chroma_1..12, chroma_std.
    Frames are rectangular windows starting every ``step`` samples while a whole window fits:
    ``1 + (len(y) - win) // step`` frames. The signal is DC-removed and peak-normalised first.
    """
    import scipy.fft

    x = np.asarray(y, dtype=np.float64)
    if len(x) < win:
        raise ValueError(f"frame34 needs at least {win} samples, got {len(x)}")
    x = x - x.mean()
    x = x / (np.abs(x).max() + 1e-10)
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::step]  # (N, win)
    n = frames.shape[0]
    num_fft = win // 2
    feats = np.zeros((n, 34))
    feats[:, 0] = np.sum(np.abs(np.diff(np.sign(frames), axis=1)), axis=1) / 2 / (win - 1)
    feats[:, 1] = np.sum(frames**2, axis=1) / win
    feats[:, 2] = _block_entropy(frames)
    mag = np.abs(np.fft.rfft(frames, axis=1))[:, :num_fft] / num_fft
    # centroid and spread (normalised by Nyquist) of the max-normalised magnitude
    ind = np.arange(1, num_fft + 1) * (sr / (2.0 * num_fft))
    mx = mag.max(axis=1, keepdims=True)
    xt = mag / np.where(mx == 0, _EPS, mx)
    den = np.sum(xt, axis=1) + _EPS
    centroid = np.sum(ind * xt, axis=1) / den
    spread = np.sqrt(np.sum((ind[None, :] - centroid[:, None]) ** 2 * xt, axis=1) / den)
    feats[:, 3] = centroid / (sr / 2.0)
    feats[:, 4] = spread / (sr / 2.0)
    feats[:, 5] = _block_entropy(mag)
    prev = np.vstack([mag[:1], mag[:-1]])  # the first frame is compared with itself (flux 0)
    cur_n = mag / np.sum(mag + _EPS, axis=1, keepdims=True)
    prev_n = prev / np.sum(prev + _EPS, axis=1, keepdims=True)
    feats[:, 6] = np.sum((cur_n - prev_n) ** 2, axis=1)
    power = mag**2
    cum = np.cumsum(power, axis=1) + _EPS
    above = cum > 0.90 * np.sum(power, axis=1, keepdims=True)
    first = np.argmax(above, axis=1)
    feats[:, 7] = np.where(above.any(axis=1), first / float(num_fft), 0.0)
    fbank, last_bin, per = _pyaa_filters(sr, num_fft)
    feats[:, 8:21] = scipy.fft.dct(np.log10(mag @ fbank.T + _EPS), type=2, norm="ortho", axis=1)[:, :13]
    c = np.zeros((n, num_fft))
    has = last_bin >= 0
    c[:, np.nonzero(has)[0]] = power[:, last_bin[has]]
    c /= per[None, :]
    width = int(np.ceil(num_fft / 12.0) * 12)
    c2 = np.zeros((n, width))
    c2[:, :num_fft] = c
    chroma = c2.reshape(n, width // 12, 12).sum(axis=1)
    total = power.sum(axis=1, keepdims=True)
    chroma = chroma / np.where(total == 0, _EPS, total)
    feats[:, 21:33] = chroma
    feats[:, 33] = chroma.std(axis=1)
    return feats.astype(np.float32)


@register_extractor("frame34")
class Frame34(Extractor):
    """Xu et al.'s 34 short-term features (pyAudioAnalysis) per 20 ms frame, 10 ms hop: (frames, 34)."""

    config_cls = Frame34Config
    preparation = {"normalise": "global"}
    cpu_preparation = {"pool": 4, "normalise": "speaker"}
    source = "audio"

    @property
    def frame_seconds(self) -> float:
        return self.config.hop_seconds

    @property
    def dim(self) -> int:
        return 34

    def extract(self, utt: Utterance) -> np.ndarray:
        cfg = self.config
        y = load_audio(utt, cfg.sample_rate, min_seconds=cfg.win_seconds)
        return frame34_features(y, cfg.sample_rate, round(cfg.win_seconds * cfg.sample_rate), round(cfg.hop_seconds * cfg.sample_rate))


# --------------------------------------------------------------------------- spectrogram
@dataclass(frozen=True)
class Spectrogram257Config(ExtractorConfig):
    """``max_seconds``: audio kept, from the start (None: all); ``pad``: zero-pad the audio
    to ``max_seconds`` before the STFT. Krishna and Patil compute the spectrogram "for 10sec
    audio" (sec. 5) as they crop the first 10 s of the waveform or pad it with zeros (sec. 4)."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    floor_db: float = -100.0  # dB floor (silence stays finite); exact in the output
    max_seconds: float | None = 10.0
    pad: bool = True


@register_extractor("spectrogram257")
class Spectrogram257(Extractor):
    """10*log10 power spectrogram, 512-point FFT, 25 ms Hann window, 10 ms hop, of the first
    10 s zero-padded to 10 s: (1001, 257).

    The first :meth:`valid_length` frames equal the spectrogram of the cropped, unpadded audio
    (``center`` framing pads with the same zeros), so the padding can be cut off or masked.
    """

    config_cls = Spectrogram257Config
    preparation = {"normalise": "global"}
    cpu_preparation = {"config": {"pad": False}, "pool": 2, "normalise": "speaker"}
    source = "audio"

    @property
    def frame_seconds(self) -> float:
        return self.config.hop_length / self.config.sample_rate

    @property
    def dim(self) -> int:
        return self.config.n_fft // 2 + 1

    def extract(self, utt: Utterance) -> np.ndarray:
        import librosa

        cfg = self.config
        y = load_audio(utt, cfg.sample_rate, min_seconds=cfg.win_length / cfg.sample_rate)
        if cfg.max_seconds is not None:
            y = y[: self.max_samples]
            if cfg.pad and len(y) < self.max_samples:
                y = np.pad(y, (0, self.max_samples - len(y)))
        s = librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                         window="hann", center=True, pad_mode="constant")
        return power_to_db_floored(s.real**2 + s.imag**2, cfg.floor_db).T

    @property
    def max_samples(self) -> int | None:
        """Samples kept (``max_seconds`` at ``sample_rate``); None keeps every sample."""
        cfg = self.config
        return None if cfg.max_seconds is None else int(round(cfg.max_seconds * cfg.sample_rate))

    def valid_length(self, utt: Utterance) -> int:
        """Frames of :meth:`extract`'s output computed from real audio (the rest is padding).

        ``center`` framing gives ``1 + samples // hop`` frames; the audio is at least one
        window long (``load_audio`` pads shorter clips) and at most ``max_samples``."""
        cfg = self.config
        n = max(audio_frames(utt, cfg.sample_rate), cfg.win_length)
        if self.max_samples is not None:
            n = min(n, self.max_samples)
        return 1 + n // cfg.hop_length


def power_to_db_floored(power: np.ndarray, floor_db: float) -> np.ndarray:
    """``10*log10(power)`` as float32, clamped below at exactly ``floor_db``.

    The floor is applied to the decibels, not the power: float32 ``log10`` of a power floor
    rounds differently across SIMD widths (AVX-512 numpy gives -100.00001 for 1e-10), while a
    clamp to the constant is exact everywhere. Zero power gives -inf before the clamp.
    """
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(np.asarray(power, dtype=np.float32))
    return np.maximum(db, np.float32(floor_db))
