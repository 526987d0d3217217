"""Dataset, collate (padding and masks), word spans and length-bucketed batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.training.data import BucketBatchSampler, DataError, SERDataset, collate, pool_frames, word_spans_frames

CLASSES = ("neu", "hap", "ang", "sad")


def test_collate_pads_with_zeros_and_masks_real_steps(manifest, features):
    ids = manifest.ids[:3]
    data = {k: v.data for k, v in features.items()}
    ds = SERDataset(manifest, ids, data, CLASSES)
    b = collate([ds[0], ds[1], ds[2]])
    lens = [data["audio"][i].shape[0] for i in ids]
    assert b["audio"].shape == (3, max(lens), 6)
    assert b["audio_mask"].sum(1).tolist() == lens
    for r, i in enumerate(ids):
        n = lens[r]
        assert torch.equal(b["audio"][r, :n], torch.from_numpy(data["audio"][i]))
        assert float(b["audio"][r, n:].abs().sum()) == 0.0
        assert b["text_mask"][r].sum() == data["text"][i].shape[0]
    assert b["labels"].tolist() == [CLASSES.index(manifest[i].label) for i in ids]
    assert b["ids"] == list(ids)
    # host lengths for the models' RNN packing: the true step counts, on the CPU
    assert b["audio_lengths"].tolist() == lens and b["audio_lengths"].device.type == "cpu"
    assert b["text_lengths"].tolist() == [data["text"][i].shape[0] for i in ids]


def test_collate_names_utterances_it_cannot_batch(manifest, features):
    ids = manifest.ids[:3]
    data = {k: dict(v.data) for k, v in features.items()}
    data["audio"][ids[1]] = data["audio"][ids[1]][:0]  # no frames at all
    ds = SERDataset(manifest, ids, data, CLASSES)
    with pytest.raises(DataError, match=rf"input 'audio' has no steps for utterance\(s\) \['{ids[1]}'\]"):
        collate([ds[0], ds[1], ds[2]])

    ds = SERDataset(manifest, ids, {k: v.data for k, v in features.items()}, CLASSES, word_spans=True,
                    audio_frame_seconds=0.01)
    items = [ds[0], ds[1]]
    n_frames = items[1]["audio"].shape[0]
    items[1]["word_spans"] = items[1]["word_spans"].clone()
    items[1]["word_spans"][0] = torch.tensor([0, n_frames + 1])
    with pytest.raises(DataError, match=rf"word_spans of utterance '{ids[1]}' fall outside \[0, {n_frames}\]"):
        collate(items)


def test_waveform_is_cropped_to_valid_length_and_flattened(manifest):
    ids = manifest.ids[:2]
    wave = {i: np.arange(100, dtype=np.float32)[:, None] for i in ids}  # padded to 100 samples
    valid = {"waveform": {ids[0]: 40, ids[1]: 70}}
    ds = SERDataset(manifest, ids, {"waveform": wave}, CLASSES, valid_lengths=valid)
    b = collate([ds[0], ds[1]])
    assert b["waveform"].shape == (2, 70)
    assert b["waveform_mask"].sum(1).tolist() == [40, 70]
    assert b["waveform"][0, 39] == 39 and b["waveform"][0, 40] == 0


def test_missing_features_and_unknown_labels_raise(manifest, features):
    data = {k: dict(v.data) for k, v in features.items()}
    gone = manifest.ids[1]
    del data["audio"][gone]
    with pytest.raises(DataError, match=f"input 'audio'.*{gone}"):
        SERDataset(manifest, manifest.ids[:3], data, CLASSES)
    with pytest.raises(DataError, match="not one of the classes"):
        SERDataset(manifest, manifest.ids[:3], {"text": data["text"]}, ("neu",))


def test_word_spans_from_timings():
    words = ["well", "i", "can't"]
    timings = [("<s>", 0.0, 0.1), ("WELL", 0.1, 0.35), ("I", 0.35, 0.5), ("CAN'T", 0.5, 0.9), ("</s>", 0.9, 1.0)]
    spans = word_spans_frames(words, timings, frame_seconds=0.05, n_frames=20, n_rows=3)
    assert spans.tolist() == [[2, 7], [7, 10], [10, 18]]
    # An untimed transcript gives empty spans; padded rows too.
    assert word_spans_frames(words, None, 0.05, 20, 4).tolist() == [[0, 0]] * 4


def test_collate_word_spans_padded_to_text_length(manifest, features):
    ids = manifest.ids[:2]
    data = {k: v.data for k, v in features.items()}
    ds = SERDataset(manifest, ids, data, CLASSES, word_spans=True, audio_frame_seconds=0.01)
    b = collate([ds[0], ds[1]])
    assert b["word_spans"].shape == (2, b["text"].shape[1], 2)
    assert b["word_spans"].dtype == torch.long
    n_frames = b["audio_mask"].sum(1)
    assert bool((b["word_spans"][..., 1] <= n_frames[:, None]).all())


def test_pool_frames_matches_mean():
    x = np.random.default_rng(0).normal(size=(11, 3)).astype(np.float32)
    p = pool_frames(x, 4)
    assert p.shape == (3, 3)
    np.testing.assert_allclose(p[1], x[4:8].mean(0), rtol=1e-6)
    np.testing.assert_allclose(p[2], x[8:].mean(0), rtol=1e-6)


def test_bucketing_reduces_padding_and_covers_every_item_once():
    lengths = np.random.default_rng(1).integers(5, 500, size=400)
    plain = list(BucketBatchSampler(lengths, 16, seed=3, bucketing=False))
    bucketed = list(BucketBatchSampler(lengths, 16, seed=3, bucketing=True))
    for batches in (plain, bucketed):
        flat = sorted(i for b in batches for i in b)
        assert flat == list(range(400))

    def padding(batches):
        return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in batches)

    assert padding(bucketed) < 0.2 * padding(plain)


def test_sampler_is_seeded_per_epoch():
    lengths = np.arange(100)
    a = BucketBatchSampler(lengths, 8, seed=5)
    b = BucketBatchSampler(lengths, 8, seed=5)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)
    assert len(a) == 13
