"""Datasets, padding collate and length-bucketed batches for training on cached features.

One :class:`SERDataset` covers a subset of a manifest (a fold's train, validation or test
ids). Each model input (``audio``, ``text``, ``video``, ``waveform``; see
``workbench.models.outputs``) reads one feature mapping (utterance id -> float32 (steps,
dim)), and ``word_spans`` are built from the manifest's word timings.

:func:`collate` pads every input to the longest item of the batch with zeros and adds
``<input>_mask`` (True on real steps), ``labels`` (B,) and ``ids``.

>>> import numpy as np
>>> from workbench.testing import make_manifest
>>> m = make_manifest(sessions=1, seed=0)
>>> ids = m.ids[:3]
>>> audio = {i: np.ones((5 + k, 2), np.float32) for k, i in enumerate(ids)}
>>> ds = SERDataset(m, ids, {"audio": audio}, classes=sorted({m[i].label for i in m.ids}))
>>> b = collate([ds[0], ds[2]])
>>> tuple(b["audio"].shape), b["audio_mask"].sum(1).tolist()
((2, 7, 2), [5, 7])
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from workbench.corpus.manifest import Manifest
from workbench.errors import WorkbenchError
from workbench.features.words import match_word_timings, split_words
from workbench.models.card import SEQUENCE_INPUTS


class DataError(WorkbenchError, ValueError):
    """A dataset cannot be built (missing features, unknown labels); the message says which."""


def pool_frames(x: np.ndarray, k: int) -> np.ndarray:
    """Average every ``k`` consecutive rows of (T, D) ``x`` (the last group may be shorter).

    >>> pool_frames(np.arange(10, dtype=np.float32).reshape(5, 2), 2).tolist()
    [[1.0, 2.0], [5.0, 6.0], [8.0, 9.0]]
    """
    if k <= 1:
        return x
    t = x.shape[0]
    full = (t // k) * k
    out = x[:full].reshape(t // k, k, -1).mean(axis=1)
    if full < t:
        out = np.concatenate([out, x[full:].mean(axis=0, keepdims=True)], axis=0)
    return out.astype(np.float32, copy=False)


def word_spans_frames(words: Sequence[str], timings: Sequence[tuple[str, float, float]] | None,
                      frame_seconds: float, n_frames: int, n_rows: int) -> np.ndarray:
    """(n_rows, 2) int64 [first, last) audio frames per text row.

    Row i is word i of ``words`` (``split_words`` of the transcript); its span comes from
    :func:`match_word_timings` and is converted to frames of ``frame_seconds``, clipped to
    ``[0, n_frames]`` and made at least one frame long. Words without a timing, and the single
    placeholder row of an empty transcript, get the empty span [0, 0).

    >>> word_spans_frames(["hi", "there"], [("HI", 0.0, 0.3), ("THERE", 0.3, 0.72)], 0.1, 7, 2).tolist()
    [[0, 3], [3, 7]]
    """
    out = np.zeros((n_rows, 2), dtype=np.int64)
    if not words or n_frames <= 0:
        return out
    spans = match_word_timings(list(words), timings)
    for i, span in enumerate(spans[:n_rows]):
        if span is None:
            continue
        first = min(max(int(math.floor(span[0] / frame_seconds + 1e-6)), 0), n_frames - 1)
        last = min(max(int(math.ceil(span[1] / frame_seconds - 1e-6)), first + 1), n_frames)
        out[i] = (first, last)
    return out


class SERDataset(torch.utils.data.Dataset):
    """Items for ``ids`` of ``manifest``: ``{input: float32 tensor (steps, dim), "label": int,
    "id": str}`` (waveforms are 1-D (samples,)), plus ``word_spans`` (W, 2) when requested.

    ``features`` maps model input -> (utterance id -> array (steps, dim)); ``valid_lengths``
    optionally maps an input -> (id -> real steps) to crop padded features (the padded
    ``waveform``). ``frame_seconds`` of ``audio`` is needed for ``word_spans``.
    """

    def __init__(
        self,
        manifest: Manifest,
        ids: Sequence[str],
        features: Mapping[str, Mapping[str, np.ndarray]],
        classes: Sequence[str],
        valid_lengths: Mapping[str, Mapping[str, int]] | None = None,
        word_spans: bool = False,
        audio_frame_seconds: float | None = None,
    ):
        self.ids = list(ids)
        self.classes = list(classes)
        self.inputs = [k for k in SEQUENCE_INPUTS if k in features]
        unknown = set(features) - set(SEQUENCE_INPUTS)
        if unknown:
            raise DataError(f"unknown model input(s) {sorted(unknown)}; known: {SEQUENCE_INPUTS}")
        index = {c: i for i, c in enumerate(self.classes)}
        self.labels = []
        for i in self.ids:
            lab = manifest[i].label
            if lab not in index:
                raise DataError(f"utterance {i!r} has label {lab!r}, not one of the classes {self.classes}")
            self.labels.append(index[lab])
        for name in self.inputs:
            missing = [i for i in self.ids if i not in features[name]]
            if missing:
                raise DataError(f"input {name!r}: {len(missing)} utterance(s) have no features, e.g. {missing[:3]}; "
                                "extract them first (workbench.features.cache.FeatureCache.get)")
        self._arrays: dict[str, list[np.ndarray]] = {}
        for name in self.inputs:
            vl = (valid_lengths or {}).get(name)
            arrs = []
            for i in self.ids:
                a = features[name][i]
                if vl is not None:
                    a = a[: int(vl[i])]
                if name == "waveform":
                    a = a.reshape(-1)
                arrs.append(a)
            self._arrays[name] = arrs
        self._spans: list[np.ndarray] | None = None
        if word_spans:
            if "audio" not in self.inputs or "text" not in self.inputs or audio_frame_seconds is None:
                raise DataError("word_spans need 'audio' and 'text' features and the audio frame_seconds")
            self._spans = [
                word_spans_frames(split_words(manifest[i].text), manifest[i].words, audio_frame_seconds,
                                  a.shape[0], t.shape[0])
                for i, a, t in zip(self.ids, self._arrays["audio"], self._arrays["text"])
            ]

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self, name: str | None = None) -> np.ndarray:
        """Steps per item of input ``name`` (default: the longest-running input, which sets the
        cost: audio/waveform before video before text)."""
        if name is None:
            order = [k for k in ("waveform", "audio", "video", "text") if k in self.inputs]
            if not order:
                return np.ones(len(self), dtype=np.int64)
            name = order[0]
        return np.array([a.shape[0] for a in self._arrays[name]], dtype=np.int64)

    def __getitem__(self, k: int) -> dict[str, Any]:
        item: dict[str, Any] = {name: torch.from_numpy(np.array(self._arrays[name][k], dtype=np.float32))
                                for name in self.inputs}
        if self._spans is not None:
            item["word_spans"] = torch.from_numpy(self._spans[k])
        item["label"] = self.labels[k]
        item["id"] = self.ids[k]
        return item


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pad a list of :class:`SERDataset` items into one batch (zeros on padding).

    Returns ``<input>`` (B, T_max, D) or (B, S_max) for waveforms, ``<input>_mask`` bool
    (B, T_max) True on real steps, ``<input>_lengths`` long (B,) real steps (these stay on
    the host: models pack their RNNs with them without reading the GPU, see
    :func:`workbench.models.layers.run_rnn`), ``word_spans`` (B, W_max, 2) long with [0, 0)
    on padded words, ``labels`` long (B,) and ``ids`` (list of B str).

    Items with no step of an input, and word spans outside the item's audio frames, raise
    :class:`DataError` naming the utterance: the models trust batches that carry lengths.
    """
    if not items:
        raise DataError("collate: empty batch")
    batch: dict[str, Any] = {}
    for name in SEQUENCE_INPUTS:
        if name not in items[0]:
            continue
        xs = [it[name] for it in items]
        n = torch.tensor([x.shape[0] for x in xs], dtype=torch.long)
        empty = [it["id"] for it, k in zip(items, n.tolist()) if k == 0]
        if empty:
            raise DataError(f"collate: input {name!r} has no steps for utterance(s) {empty}; "
                            f"drop them from the manifest or re-extract their features")
        t_max = int(n.max())
        out = xs[0].new_zeros((len(xs), t_max, *xs[0].shape[1:]))
        for b, x in enumerate(xs):
            out[b, : x.shape[0]] = x
        batch[name] = out
        batch[f"{name}_mask"] = torch.arange(t_max)[None, :] < n[:, None]
        batch[f"{name}_lengths"] = n
    if "word_spans" in items[0]:
        if "audio" not in batch:
            raise DataError("collate: word_spans are audio frame spans, but the items have no 'audio'")
        for it in items:
            s, n_frames = it["word_spans"], it["audio"].shape[0]
            if bool(((s[:, 0] < 0) | (s[:, 1] < s[:, 0]) | (s[:, 1] > n_frames)).any()):
                raise DataError(f"collate: word_spans of utterance {it['id']!r} fall outside [0, {n_frames}] "
                                f"audio frames or end before they start")
        w_max = batch["text"].shape[1] if "text" in batch else max(it["word_spans"].shape[0] for it in items)
        spans = torch.zeros(len(items), w_max, 2, dtype=torch.long)
        for b, it in enumerate(items):
            spans[b, : it["word_spans"].shape[0]] = it["word_spans"]
        batch["word_spans"] = spans
    batch["labels"] = torch.tensor([it["label"] for it in items], dtype=torch.long)
    batch["ids"] = [it["id"] for it in items]
    return batch


class BucketBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Seeded batches of indices; with ``bucketing`` items of similar length share a batch.

    Each epoch (``set_epoch``) draws a permutation from ``seed + epoch``; with bucketing the
    permutation is cut into pools of ``pool_batches`` batches, each pool is sorted by length
    and cut into batches, and the batch order is shuffled, so batches hold similar lengths
    (little padding) yet vary between epochs. The batches of an epoch depend only on
    (seed, epoch), so a resumed run sees exactly the batches of an uninterrupted one.

    >>> s = BucketBatchSampler([5, 1, 4, 2, 3, 6], batch_size=2, seed=0, pool_batches=3)
    >>> sorted(sorted(b) for b in s)  # pairs of neighbours in length
    [[0, 5], [1, 3], [2, 4]]
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, bucketing: bool = True,
                 shuffle: bool = True, drop_last: bool = False, pool_batches: int = 50):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.bucketing = bucketing
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.pool_batches = pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if self.bucketing:
            pool = self.batch_size * self.pool_batches
            chunks = []
            for s in range(0, n, pool):
                part = order[s : s + pool]
                chunks.append(part[np.argsort(self.lengths[part], kind="stable")])
            order = np.concatenate(chunks) if chunks else order
        batches = [order[s : s + self.batch_size].tolist() for s in range(0, n, self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.bucketing and self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


def make_loader(dataset: SERDataset, batch_size: int, seed: int = 0, bucketing: bool = True,
                shuffle: bool = True, pin_memory: bool = False) -> tuple[torch.utils.data.DataLoader, BucketBatchSampler]:
    """A DataLoader over ``dataset`` with a :class:`BucketBatchSampler` (returned too, for
    ``set_epoch``). Loading stays in the main process: items are views of memory-mapped caches.
    ``pin_memory`` (for CUDA) makes the batches' non-blocking copies to the GPU truly asynchronous."""
    sampler = BucketBatchSampler(dataset.lengths(), batch_size, seed=seed, bucketing=bucketing, shuffle=shuffle)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, pin_memory=pin_memory)
    return loader, sampler
