"""Z-normalisation of frame features: fitted once, applied lazily, saved with a run.

Normalisation needs statistics of many utterances (a training fold, or every utterance of one
speaker), so it cannot live inside a per-utterance extractor without making each cache entry
depend on the rest of the corpus. It is a cheap post-processing step instead, in two halves
(the preprocessor pattern of HF transformers): :func:`fit_normaliser` computes the statistics,
and the :class:`Normaliser` it returns applies them, can be saved beside a trained model and
loaded back, so a reloaded model sees exactly the inputs it was evaluated on. Training, the
attention explorer and notebook 03 all use this one module.

Modes: ``"global"`` fits one mean/std per dimension on the ``fit_ids`` (a training fold, so
test audio does not leak into them); ``"speaker"`` fits each speaker's mean/std on that
speaker's utterances among ``ids`` (labels are never used, which is why per-speaker
statistics of test speakers are the usual SER practice); ``"none"`` leaves values as they are.
A near-constant dimension (std below ``EPS``) becomes 0 rather than noise divided by ``EPS``.

``deltas``: a normaliser fitted with ``deltas=True`` appends each dimension's first
differences *after* normalising (frames (T, D) -> (T, 2D)), the order of Pepino et al.'s
features (sec. 2.2: normalised, then "first-order differences were added"); the statistics
are those of the D stored dimensions.

>>> import numpy as np
>>> from workbench.testing.dummies import make_utterance
>>> from workbench.corpus.manifest import Manifest
>>> m = Manifest([make_utterance(id="Ses01F_impro01_F000"), make_utterance(id="Ses01F_impro01_M000")])
>>> feats = {"Ses01F_impro01_F000": np.array([[1.0, 7.0], [3.0, 7.0]]),
...          "Ses01F_impro01_M000": np.array([[10.0, 7.0], [30.0, 7.0]])}
>>> out = normalise(feats, m, "speaker")
>>> out["Ses01F_impro01_F000"].tolist(), out["Ses01F_impro01_M000"].tolist()
([[-1.0, 0.0], [1.0, 0.0]], [[-1.0, 0.0], [1.0, 0.0]])
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from workbench.corpus.manifest import Manifest
from workbench.errors import WorkbenchError
from workbench.io import atomic_write

Mode = Literal["none", "global", "speaker"]
MODES: tuple[str, ...] = ("none", "global", "speaker")
#: Dimensions whose standard deviation is below this are constant: they normalise to 0.
EPS = 1e-8
_ALL = "all"  # the one group of global statistics


class NormaliserError(WorkbenchError, ValueError):
    """A normalisation cannot be fitted or a saved one cannot be read; the message says which."""


def add_first_differences(x: np.ndarray) -> np.ndarray:
    """(T, D) -> (T, 2D): x followed by x[t] - x[t-1] (zeros in the first row).

    >>> add_first_differences(np.array([[1.0], [3.0], [2.0]])).tolist()
    [[1.0, 0.0], [3.0, 2.0], [2.0, -1.0]]
    """
    d = np.zeros_like(x)
    d[1:] = np.diff(x, axis=0)
    return np.concatenate([x, d], axis=1)


def _stats(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """float32 (mean, std) per dimension over every frame of ``arrays``; std is inf where the
    dimension is constant, so dividing by it gives 0."""
    # float64 sums: millions of float32 frames lose digits otherwise.
    x = [np.asarray(a, dtype=np.float64) for a in arrays if len(a)]
    n = sum(a.shape[0] for a in x)
    if n == 0:
        raise NormaliserError("normalise: no frames to fit statistics on")
    mean = sum(a.sum(0) for a in x) / n
    var = sum(((a - mean) ** 2).sum(0) for a in x) / n
    std = np.sqrt(var)
    std[std < EPS] = np.inf
    return mean.astype(np.float32), std.astype(np.float32)


@dataclass(frozen=True)
class Normaliser:
    """Fitted statistics of one feature: ``group_of`` maps each utterance id it serves to a
    group (``"all"`` or a speaker), ``stats`` each group to float32 (mean, std) arrays;
    ``deltas``: first differences appended after normalising."""

    mode: Mode
    stats: Mapping[str, tuple[np.ndarray, np.ndarray]]
    group_of: Mapping[str, str]
    deltas: bool = False

    def __call__(self, utt_id: str, x: np.ndarray) -> np.ndarray:
        """``x`` (frames, dim) of utterance ``utt_id``, normalised, as float32 (frames, 2 dim
        with ``deltas``: the normalised frames, then their first differences)."""
        if self.mode != "none":
            mean, std = self.stats[self.group_of[utt_id]]
            x = ((np.asarray(x, dtype=np.float32) - mean) / std).astype(np.float32)
        return add_first_differences(np.asarray(x, dtype=np.float32)) if self.deltas else x

    def apply(self, features: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        """A lazy view of ``features`` normalised (each array on access), over the ids this
        normaliser serves; ``features`` itself when it changes nothing (mode ``none``, no deltas)."""
        return features if self.mode == "none" and not self.deltas else _Normalised(features, self)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The statistics as named arrays (for an ``.npz`` written with the rest of a run)."""
        groups = sorted(self.stats)
        index = {g: k for k, g in enumerate(groups)}
        ids = sorted(self.group_of)
        header = {"mode": self.mode, "groups": groups, "deltas": self.deltas}
        out = {f"{prefix}/header": np.array(json.dumps(header)),
               f"{prefix}/ids": np.array(ids, dtype=str),
               # -1: no statistics (mode "none")
               f"{prefix}/group": np.array([index.get(self.group_of[i], -1) for i in ids], dtype=np.int64)}
        if groups:
            out[f"{prefix}/mean"] = np.stack([self.stats[g][0] for g in groups])
            out[f"{prefix}/std"] = np.stack([self.stats[g][1] for g in groups])
        return out

    @staticmethod
    def from_arrays(arrays: Mapping[str, np.ndarray], prefix: str) -> "Normaliser":
        header = json.loads(str(arrays[f"{prefix}/header"]))
        groups = list(header["groups"])
        stats = {g: (arrays[f"{prefix}/mean"][k], arrays[f"{prefix}/std"][k]) for k, g in enumerate(groups)}
        ids = [str(i) for i in arrays[f"{prefix}/ids"]]
        index = arrays[f"{prefix}/group"]
        if len(index) != len(ids) or (len(index) and (index.min() < -1 or index.max() >= len(groups))):
            raise ValueError(f"{prefix}: group table does not match its {len(ids)} ids and {len(groups)} groups")
        group_of = {i: groups[int(k)] if k >= 0 else _ALL for i, k in zip(ids, index)}
        return Normaliser(header["mode"], stats, group_of, bool(header.get("deltas", False)))


class _Normalised(Mapping[str, np.ndarray]):
    """``features`` seen through a :class:`Normaliser`: arrays are normalised on access, so a
    whole corpus is never copied."""

    def __init__(self, features: Mapping[str, np.ndarray], normaliser: Normaliser):
        self.features, self.normaliser = features, normaliser

    def __getitem__(self, key: str) -> np.ndarray:
        return self.normaliser(key, self.features[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self.normaliser.group_of)

    def __len__(self) -> int:
        return len(self.normaliser.group_of)


def fit_normaliser(features: Mapping[str, np.ndarray], manifest: Manifest, mode: Mode, ids: Iterable[str],
                   fit_ids: Iterable[str] | None = None, deltas: bool = False) -> Normaliser:
    """Statistics for the utterances ``ids``: ``global`` ones fitted on ``fit_ids`` (default:
    ``ids``), ``speaker`` ones on each speaker's utterances among ``ids``; with ``deltas`` the
    normaliser appends first differences after normalising."""
    if mode not in MODES:
        raise NormaliserError(f"normalise: mode {mode!r} is not one of {'/'.join(MODES)}")
    ids = list(ids)
    if mode == "none":
        return Normaliser("none", {}, {i: _ALL for i in ids}, deltas)
    if mode == "global":
        fit = list(fit_ids) if fit_ids is not None else ids
        if not fit:
            raise NormaliserError("normalise: fit_ids is empty")
        return Normaliser("global", {_ALL: _stats([features[i] for i in fit])}, {i: _ALL for i in ids}, deltas)
    by_speaker: dict[str, list[str]] = defaultdict(list)
    for i in ids:
        by_speaker[manifest[i].speaker].append(i)
    stats = {s: _stats([features[i] for i in group]) for s, group in by_speaker.items()}
    return Normaliser("speaker", stats, {i: manifest[i].speaker for i in ids}, deltas)


def normalise(features: Mapping[str, np.ndarray], manifest: Manifest, mode: Mode = "global",
              fit_ids: Iterable[str] | None = None, deltas: bool = False) -> dict[str, np.ndarray]:
    """Every utterance of ``manifest`` normalised as training does (float32 copies); with
    ``deltas``, first differences of the normalised frames appended."""
    missing = [u.id for u in manifest if u.id not in features]
    if missing:
        raise NormaliserError(f"normalise: {len(missing)} utterance(s) have no features, e.g. {missing[:3]}")
    norm = fit_normaliser(features, manifest, mode, manifest.ids, fit_ids, deltas)
    return {u.id: np.asarray(norm(u.id, features[u.id]), dtype=np.float32) for u in manifest}


def save_normalisers(path: str | Path, normalisers: Mapping[str, Normaliser]) -> Path:
    """Write one normaliser per model input to an ``.npz`` (atomically; no pickles)."""
    arrays: dict[str, np.ndarray] = {"inputs": np.array(json.dumps(sorted(normalisers)))}
    for name, norm in normalisers.items():
        arrays.update(norm.to_arrays(name))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare name
            np.savez(fh, **arrays)

    return atomic_write(path, write)


def statistics_problem(norm: Normaliser, dim: int | None = None) -> str | None:
    """Why ``norm``'s statistics cannot normalise features of ``dim`` stored dimensions (None:
    not checked), or None. A mean must be finite and a std positive (``inf`` is how a constant
    dimension is stored); a NaN mean or a zero std would turn every test item non-finite."""
    if norm.mode not in MODES:
        return f"mode {norm.mode!r} is not one of {'/'.join(MODES)}"
    for group, (mean, std) in norm.stats.items():
        mean, std = np.asarray(mean), np.asarray(std)
        if mean.ndim != 1 or std.shape != mean.shape:
            return f"group {group!r}: mean {mean.shape} and std {std.shape} are not two vectors of one length"
        if dim is not None and mean.shape[0] != dim:
            return f"group {group!r}: statistics of {mean.shape[0]} dimensions for features of {dim}"
        if not np.isfinite(mean).all():
            return f"group {group!r}: {int((~np.isfinite(mean)).sum())} non-finite mean value(s)"
        if not (std > 0).all():  # NaN fails this too
            return f"group {group!r}: {int((~(std > 0)).sum())} std value(s) not positive (0 or NaN)"
    return None


def check_normalisers(normalisers: Mapping[str, Normaliser], path: str | Path,
                      dims: Mapping[str, int] | None = None, ids: Iterable[str] = ()) -> None:
    """:class:`NormaliserError` naming ``path`` and the input when a normaliser's statistics are
    unusable (:func:`statistics_problem`), do not match ``dims`` (input -> stored feature
    dimension), or do not serve every one of ``ids``."""
    ids = list(ids)
    for name, norm in normalisers.items():
        problem = statistics_problem(norm, (dims or {}).get(name))
        if problem is None:
            missing = [i for i in ids if i not in norm.group_of]
            if missing:
                problem = f"no statistics for {len(missing)} utterance(s), e.g. {missing[:3]}"
        if problem:
            raise NormaliserError(f"{path}: input {name!r}: {problem}; retrain the run (workbench train ... --rerun)")
    if dims is not None:
        absent = sorted(set(dims) - set(normalisers))
        if absent:
            raise NormaliserError(f"{path}: no statistics for input(s) {absent}; retrain the run "
                                  "(workbench train ... --rerun)")


def load_normalisers(path: str | Path) -> dict[str, Normaliser]:
    """What :func:`save_normalisers` wrote; :class:`NormaliserError` names a damaged file, or
    one whose statistics are unusable (:func:`statistics_problem`)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        out = {name: Normaliser.from_arrays(arrays, name) for name in json.loads(str(arrays["inputs"]))}
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        raise NormaliserError(f"{path}: unreadable normalisation statistics ({type(e).__name__}: {e}); "
                              "retrain the run (workbench train ... --rerun)") from e
    check_normalisers(out, path)
    return out
