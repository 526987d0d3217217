"""Feature-extraction benchmark behind ``workbench bench features``.

On one set of utterances it measures seconds of audio processed per wall-clock second for

- the batched torch MFCC-120 path (:class:`workbench.features.audio.Mfcc120`),
- a plain per-file ``librosa`` loop computing the same features,
- openSMILE (the ComParE LLDs behind ``prosody36``),
- a cached reload of the whole corpus's MFCC-120 through :class:`FeatureCache`,

(plus, per CPU second of this process, a rate that a busy shared machine distorts less),
and checks that the batched path matches librosa (max absolute difference, interior frames and
all frames). Compute rates are measured on audio already in memory, so they compare the
feature code, not the disk; decoding is timed on its own, and the cache rows time the full
``cache.get`` (hashing, decoding, extraction, writing) against a reload. Budgets (DESIGN.md
section 10): batched >= 3,000 s/s on 2 cores and >= 3x the librosa loop; reload >= 50x
faster than recompute.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.corpus.manifest import Manifest, Utterance

BUDGET_BATCHED_RATE = 3000.0
BUDGET_SPEEDUP_VS_LIBROSA = 3.0
BUDGET_RELOAD_SPEEDUP = 50.0


@dataclass
class BenchResult:
    """Measured rates (seconds of audio per wall second) and checks of one benchmark run."""

    n_utterances: int
    audio_seconds: float
    device: str
    torch_threads: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    max_abs_diff_interior: float = float("nan")
    max_abs_diff_all: float = float("nan")
    checks: dict[str, bool] = field(default_factory=dict)

    def add(self, name: str, seconds: tuple[float, float], audio_seconds: float, note: str = "") -> float:
        """Record (wall, cpu) seconds of one step; returns seconds of audio per wall second."""
        wall, cpu = seconds
        rate = audio_seconds / wall if wall > 0 else float("inf")
        per_cpu = audio_seconds / cpu if cpu > 0 else float("inf")
        self.rows.append(dict(step=name, wall_s=wall, cpu_s=cpu, audio_s=audio_seconds, audio_s_per_s=rate,
                              audio_s_per_cpu_s=per_cpu, note=note))
        return rate

    def rate(self, name: str) -> float:
        return next(r["audio_s_per_s"] for r in self.rows if r["step"] == name)

    def wall(self, name: str) -> float:
        """Wall seconds of a recorded step."""
        return next(r["wall_s"] for r in self.rows if r["step"] == name)

    def report(self) -> str:
        lines = [
            f"{self.n_utterances} utterances, {self.audio_seconds:.1f} s of audio; device {self.device}, "
            f"{self.torch_threads} torch threads",
            f"{'step':<36}{'wall s':>9}{'cpu s':>9}{'audio s/s':>11}{'per cpu s':>11}  note",
        ]
        for r in self.rows:
            lines.append(f"{r['step']:<36}{r['wall_s']:>9.3f}{r['cpu_s']:>9.3f}{r['audio_s_per_s']:>11.0f}"
                         f"{r['audio_s_per_cpu_s']:>11.0f}  {r['note']}")
        lines.append(f"batched vs librosa: max |diff| interior frames {self.max_abs_diff_interior:.2e}, "
                     f"all frames {self.max_abs_diff_all:.2e}")
        for name, ok in self.checks.items():
            lines.append(f"[{'PASS' if ok else 'FAIL'}] {name}")
        return "\n".join(lines)


def _timed(fn, *args, **kwargs) -> tuple[Any, tuple[float, float]]:
    """fn's result and (wall seconds, CPU seconds of this process, all threads)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - t0, time.process_time() - c0)


def bench_features(
    manifest: Manifest,
    device: str = "auto",
    batch_size: int = 16,
    opensmile: bool = True,
    cache_root: str | Path | None = None,
) -> BenchResult:
    """Run every measurement on ``manifest``'s utterances; see the module docstring."""
    import torch

    from workbench.features.audio import Mfcc120, device_name, librosa_mfcc120
    from workbench.features.audio_io import AudioWarning, load_audio
    from workbench.features.cache import FeatureCache

    utts: list[Utterance] = list(manifest)
    if not utts:
        raise ValueError("bench_features: the manifest is empty")
    ext = Mfcc120(Mfcc120.config_cls(device=device, batch_size=batch_size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioWarning)  # bad clips are padded; the rate is what we measure
        ys, t_load = _timed(lambda: [load_audio(u, min_seconds=ext.min_seconds) for u in utts])
    total = sum(len(y) for y in ys) / 16000
    res = BenchResult(len(utts), total, device_name(device), torch.get_num_threads())
    res.add("decode wavs (soundfile)", t_load, total)

    # Warm-up outside the clock: librosa's numba JIT, torch's first-call allocations.
    librosa_mfcc120(ys[0])
    ext.compute(ys[: min(len(ys), batch_size)])
    if res.device == "cuda":
        torch.cuda.synchronize()

    torch_out, t_torch = _timed(ext.compute, ys)
    r_torch = res.add("mfcc120 batched torch", t_torch, total, f"batch {batch_size}, sorted by length")
    ref, t_lib = _timed(lambda: [librosa_mfcc120(y) for y in ys])
    r_lib = res.add("mfcc120 librosa per-file loop", t_lib, total)
    half = ext.config.delta_width // 2
    res.max_abs_diff_all = max(float(np.abs(a - b).max()) for a, b in zip(torch_out, ref))
    res.max_abs_diff_interior = max(float(np.abs(a[half:-half] - b[half:-half]).max()) for a, b in zip(torch_out, ref))

    if opensmile:
        from workbench.features.prosody import prosody_lld

        prosody_lld(ys[0])  # builds the openSMILE graph
        _, t_os = _timed(lambda: [prosody_lld(y) for y in ys])
        res.add("opensmile ComParE LLDs (prosody36)", t_os, total, "per-file loop, 1 process")

    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(cache_root or tmp)
        cache.clear(ext)
        _, t_first = _timed(cache.get, ext, manifest, progress=False)
        res.add("cache.get mfcc120 (extract+write)", t_first, total, "decode + extract + hash + write")
        fs, t_reload = _timed(cache.get, ext, manifest, progress=False)
        # touch every array once so the reload is not just lazy views
        _, t_touch = _timed(lambda: sum(float(fs[i][0, 0]) for i in fs.ids))
        res.add("cache.get mfcc120 (reload)", (t_reload[0] + t_touch[0], t_reload[1] + t_touch[1]), total,
                "index + memmap + views")

    res.checks = {
        f"batched MFCC >= {BUDGET_BATCHED_RATE:.0f} s of audio/s ({r_torch:.0f})": r_torch >= BUDGET_BATCHED_RATE,
        f"batched MFCC >= {BUDGET_SPEEDUP_VS_LIBROSA:.0f}x librosa loop ({r_torch / r_lib:.1f}x)": r_torch >= BUDGET_SPEEDUP_VS_LIBROSA * r_lib,
        f"cached reload >= {BUDGET_RELOAD_SPEEDUP:.0f}x faster than recompute "
        f"({res.wall('cache.get mfcc120 (extract+write)') / res.wall('cache.get mfcc120 (reload)'):.0f}x)":
            res.wall("cache.get mfcc120 (extract+write)") >= BUDGET_RELOAD_SPEEDUP * res.wall("cache.get mfcc120 (reload)"),
        f"batched matches librosa (interior max |diff| {res.max_abs_diff_interior:.1e} < 1e-3)": res.max_abs_diff_interior < 1e-3,
    }
    return res


def wav_dir_manifest(directory: str | Path) -> Manifest:
    """A manifest of every ``*.wav`` under ``directory`` (for benchmarking arbitrary audio)."""
    import soundfile as sf

    utts = []
    for i, path in enumerate(sorted(Path(directory).rglob("*.wav"))):
        info = sf.info(str(path))
        utts.append(Utterance(id=path.stem, corpus="wavdir", session=None, dialog=None, speaker=f"spk{i}", gender=None,
                              kind="other", script=None, audio_path=str(path), start=0.0,
                              duration=float(info.duration), text="", label="unk"))
    if not utts:
        raise ValueError(f"no .wav files under {directory}")
    return Manifest(utts)
