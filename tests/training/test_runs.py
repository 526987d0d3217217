"""load_run: a reloaded run sees the inputs it was evaluated on, bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from workbench.features.normalise import NormaliserError, load_normalisers
from workbench.protocols import load_folds
from workbench.training.crossval import run_crossval
from workbench.training.data import collate
from workbench.training.inputs import fold_datasets
from workbench.training.results import read_predictions
from workbench.training.runs import RunFolderError, load_run
from workbench.training.spec import CorpusOptions, RunSpec
from workbench.training.trainer import predict
from workbench.viz.explorer import run_from_dir


@pytest.fixture
def speaker_run(manifest, features, tmp_path, tiny_recipe):
    """A random_kfold run with per-speaker audio normalisation: speakers are in train and test."""
    audio = features["audio"]
    feats = {**features, "audio": dataclasses.replace(audio, spec=dataclasses.replace(audio.spec, normalise="speaker"))}
    spec = RunSpec.create("unimodal_audio", tiny_recipe(protocol="random_kfold"), folds=[0], seeds=[3])
    row = run_crossval(spec, CorpusOptions("dummy", size="test"), manifest=manifest, features=feats, runs_root=tmp_path,
                       progress=False).iloc[0]
    return row, feats, spec


def test_reloaded_inputs_equal_the_evaluated_ones_bit_for_bit(manifest, speaker_run):
    row, feats, spec = speaker_run
    fold = {f.name: f for f in load_folds(f"{row['run_dir']}/folds.json")}[row["fold"]]
    test_speakers = {manifest[i].speaker for i in fold.test}
    assert test_speakers & {manifest[i].speaker for i in fold.train}  # the case the explorer got wrong
    evaluated = fold_datasets(manifest, fold, feats, ["neu", "hap", "ang", "sad"], spec.settings, 3).test
    for test in (load_run(row["run_dir"], manifest, features=feats).test,
                 run_from_dir(row["run_dir"], manifest, features=feats).dataset):
        assert test.ids == evaluated.ids
        for k in range(len(test)):
            assert torch.equal(test[k]["audio"], evaluated[k]["audio"]), test.ids[k]


def test_reloaded_probabilities_equal_the_stored_predictions(manifest, speaker_run, tmp_path):
    row, feats, _ = speaker_run
    run = load_run(row["run_dir"], manifest, features=feats)
    out = predict(run.model, collate([run.test[k] for k in range(len(run.test))]))
    stored = read_predictions(tmp_path).set_index("utt_id").loc[out["ids"], "probs"]
    np.testing.assert_allclose(out["probs"].numpy(), np.stack(stored.to_numpy()), rtol=0, atol=1e-6)


def test_the_statistics_are_saved_with_the_run(manifest, speaker_run):
    row, feats, _ = speaker_run
    saved = load_normalisers(f"{row['run_dir']}/normalisation.npz")
    assert set(saved) == {"audio"} and saved["audio"].mode == "speaker"
    assert set(saved["audio"].stats) == {u.speaker for u in manifest}


def test_a_run_without_saved_statistics_refits_them_as_training_did(manifest, speaker_run, tmp_path):
    row, feats, _ = speaker_run
    evaluated = load_run(row["run_dir"], manifest, features=feats).test
    (tmp_path / "train" / row["run_id"] / "normalisation.npz").unlink()  # a run from before the file existed
    refitted = load_run(row["run_dir"], manifest, features=feats).test
    for k in range(len(evaluated)):
        assert torch.equal(refitted[k]["audio"], evaluated[k]["audio"])


def _tamper_statistics(path, change):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize("change, reason", [
    # issue 28: std 0 and a NaN mean made 22 of 22 test items non-finite, with only RuntimeWarnings
    (lambda a: a["audio/std"].__setitem__((0, 0), 0.0), r"1 std value\(s\) not positive"),
    (lambda a: a["audio/mean"].__setitem__((0, 1), np.nan), r"1 non-finite mean value\(s\)"),
    (lambda a: a["audio/std"].__setitem__((0, 2), np.nan), r"1 std value\(s\) not positive"),
    # a 3-dim mean for 6-dim features gave a raw broadcast ValueError
    (lambda a: a.update({"audio/mean": a["audio/mean"][:, :3], "audio/std": a["audio/std"][:, :3]}),
     r"statistics of 3 dimensions for features of 6"),
])
def test_damaged_statistics_are_refused_naming_the_file(manifest, speaker_run, change, reason):
    row, feats, _ = speaker_run
    path = f"{row['run_dir']}/normalisation.npz"
    _tamper_statistics(path, change)
    with pytest.raises(NormaliserError, match=f"normalisation.npz: input 'audio': group .*{reason}"):
        load_run(row["run_dir"], manifest, features=feats)


# ------------------------------------------------------------------ damaged run folders (issue 28)
def _edit_config(run_dir, change):
    import json
    from pathlib import Path

    path = Path(run_dir) / "config.json"
    cfg = json.loads(path.read_text())
    change(cfg)
    path.write_text(json.dumps(cfg))


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(fold="Ses99"), r"folds\.json: no fold 'Ses99'"),
    (lambda c: c.update(settings=5), r"config\.json: damaged run configuration"),
    (lambda c: c.pop("classes"), r"config\.json: damaged run configuration \(KeyError"),
    (lambda c: c.update(folds_file="/etc/passwd"), r"config\.json: folds_file '/etc/passwd' points outside"),
    (lambda c: c.update(normalisation_file="../../../../x.npz"), r"normalisation_file '\.\./\.\./\.\./\.\./x\.npz' points outside"),
    (lambda c: c["model_config"].update(hidden=10**9),  # once tried to allocate 1 TB: refused before allocating
     r"config\.json: the model config does not build \(RuntimeError: Storage size calculation overflowed"),
    (lambda c: c["model_config"].update(hidden=20_000),
     r"s3: config\.json and the weights do not match: tensor 'rnn\.weight_ih_l0' is \(32, 6\) in the weights "
     r"but \(80000, 6\)"),
    (lambda c: c["model_config"].update(nosuch=1), r"config\.json: the model config does not build"),
])
def test_damaged_run_folders_are_named(manifest, speaker_run, change, message):
    row, feats, _ = speaker_run
    _edit_config(row["run_dir"], change)
    with pytest.raises(RunFolderError, match=message) as e:
        load_run(row["run_dir"], manifest, features=feats)
    assert "\n" not in str(e.value)


def test_a_config_that_is_not_json_is_named(manifest, speaker_run):
    from pathlib import Path

    row, feats, _ = speaker_run
    (Path(row["run_dir"]) / "config.json").write_text("{not json")
    with pytest.raises(RunFolderError, match=r"config\.json: damaged run configuration \(JSONDecodeError"):
        load_run(row["run_dir"], manifest, features=feats)
