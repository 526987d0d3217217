"""Training bundles: an exact round trip, the same results as training from the corpus, and
clear refusals of a bundle that does not fit."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from workbench import paths
from workbench.training.bench import random_features, stand_in_manifest
from workbench.training.build import model_inputs_of
from workbench.training.bundle import BundleError, crossval_from_bundle, export_bundle, load_bundle, save_bundle
from workbench.training.crossval import run_crossval
from workbench.training.recipes import get_recipe
from workbench.training.spec import CorpusOptions, RunSpec

META = {"model": "x", "preset": "demo", "corpus": "stand_in", "corpus_preset": "test", "label_scheme": "iemocap4"}


def _bundle(tmp_path, model: str, recipe: str = "demo", n: int = 30, compress: bool = False):
    m = stand_in_manifest(n, seed=2)
    settings = get_recipe(model, recipe)
    feats = random_features(m, settings, model_inputs_of(model, settings), seed=3)
    path = save_bundle(tmp_path / f"{model}.npz", m, feats, {**META, "model": model, "preset": recipe}, compress=compress)
    return path, m, feats


@pytest.mark.parametrize(("model", "compress"), [("cma_raw", False), ("xu_alignment", False), ("xu_alignment", True)])
def test_round_trip_is_exact(tmp_path, model: str, compress: bool) -> None:
    """1-D waveforms with crop lengths and 2-D frames; plain and deflated files."""
    path, m, feats = _bundle(tmp_path, model, compress=compress)
    with zipfile.ZipFile(path) as z:
        methods = {info.compress_type for info in z.infolist()}
    assert methods == {zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED}
    m2, feats2, header = load_bundle(path)
    assert [u.to_dict() for u in m2] == [u.to_dict() for u in m]
    assert set(feats2) == set(feats) and header["model"] == model and "manifest" not in header
    for name, f in feats.items():
        g = feats2[name]
        assert (g.spec, g.frame_seconds, g.dim, g.valid_lengths) == (f.spec, f.frame_seconds, f.dim, f.valid_lengths)
        for i in m.ids:
            assert g.data[i].dtype == np.float32 and np.array_equal(g.data[i], f.data[i]), (name, i)


def test_training_on_a_bundle_gives_the_rows_of_training_on_its_features(tmp_path) -> None:
    from workbench.cli import main

    path, m, feats = _bundle(tmp_path, "pepino_text", recipe="smoke", n=80)
    direct = run_crossval(RunSpec.create("pepino_text", "smoke", folds=[0], device="cpu"),
                          CorpusOptions("stand_in", size="test"), manifest=m, features=feats,
                          runs_root=tmp_path / "direct", progress=False)
    assert main(["train", "pepino_text", "--recipe", "smoke", "--bundle", str(path), "--folds", "0",
                 "--runs-root", str(tmp_path / "bundle"), "--device", "cpu", "--quiet"]) == 0
    from workbench.training.results import read_results

    via = read_results(tmp_path / "bundle")
    cols = ["run_id", "corpus", "corpus_preset", "n_train", "n_test", "wa", "ua", "macro_f1", "av_auc"]
    assert via[cols].to_dict("records") == direct[cols].to_dict("records")


def test_a_bundle_of_another_preset_or_model_is_refused(tmp_path) -> None:
    path, _, _ = _bundle(tmp_path, "xu_alignment", recipe="demo")
    with pytest.raises(BundleError,
                       match=r"input 'audio' was made with .*recipe 'paper'.*export the bundle with that recipe"):
        crossval_from_bundle(path, RunSpec.create("xu_alignment", "paper"), runs_root=tmp_path, progress=False)
    text_only, _, _ = _bundle(tmp_path, "pepino_text", recipe="demo")
    with pytest.raises(BundleError, match=r"no features for input 'audio' of model 'unimodal_audio'.*'pepino_text'"):
        crossval_from_bundle(text_only, RunSpec.create("unimodal_audio", "demo"), runs_root=tmp_path, progress=False)
    no_spec = get_recipe("pepino_text", "demo").replace(features={})
    with pytest.raises(BundleError, match=r"recipe 'demo' of model 'pepino_text' names no features for input 'text'"):
        crossval_from_bundle(text_only, RunSpec.create("pepino_text", no_spec), runs_root=tmp_path, progress=False)
    assert not (tmp_path / "train").exists()  # refused before any run directory


def test_a_missing_or_damaged_file_names_the_path(tmp_path) -> None:
    with pytest.raises(BundleError, match="no such bundle file"):
        load_bundle(tmp_path / "absent.npz")
    path, _, _ = _bundle(tmp_path, "pepino_text")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BundleError, match=r"cut\.npz: not a readable training bundle"):
        load_bundle(cut)


def test_export_from_the_smoke_corpus_trains_like_the_corpus(tmp_path) -> None:
    """The CLI's export path on the real built-in corpus and MFCC extractor (``make`` generates
    the smoke corpus before the unit tests); a bundle run equals a corpus run."""
    from workbench.features.cache import FeatureCache

    if not (paths.data_dir() / "synthetic-smoke-seed0" / "IEMOCAP_full_release" / "SYNTHETIC_README.txt").is_file():
        pytest.skip("smoke corpus not generated (make corpus-smoke)")
    cache = FeatureCache(tmp_path / "cache")
    path = export_bundle("unimodal_audio", tmp_path / "b.npz", recipe="smoke", corpus=CorpusOptions(size="smoke"),
                         cache=cache, progress=False)
    m, feats, header = load_bundle(path)
    assert (header["corpus"], header["corpus_preset"], header["preset"]) == ("synthetic", "smoke", "smoke")
    assert set(feats) == {"audio"} and feats["audio"].frame_seconds == pytest.approx(0.04)
    u = m[m.ids[0]]
    assert abs(feats["audio"].data[u.id].shape[0] - u.duration / 0.04) <= 2
    spec = RunSpec.create("unimodal_audio", "smoke", folds=[0], device="cpu", epochs=1)
    a = run_crossval(spec, CorpusOptions("synthetic", size="smoke"), cache=cache, runs_root=tmp_path / "a",
                     progress=False)
    b = crossval_from_bundle(path, spec, runs_root=tmp_path / "b", progress=False)
    assert a[["run_id", "ua", "wa", "macro_f1"]].to_dict("records") == b[["run_id", "ua", "wa", "macro_f1"]].to_dict("records")


def test_notebook_04_trains_from_a_bundle(tmp_path) -> None:
    """The notebook's ``bundle`` parameter, under papermill as a GPU box would run it, with the
    notebook's parameter names (``recipe``, ``runs_root``: an absolute path is itself)."""
    import papermill as pm

    from workbench.training.results import read_results

    path, _, _ = _bundle(tmp_path, "pepino_text", recipe="smoke", n=80)
    notebook = paths.project_root() / "notebooks" / "04_train.ipynb"
    pm.execute_notebook(str(notebook), str(tmp_path / "04_train.ipynb"), kernel_name="python3", progress_bar=False,
                        parameters=dict(bundle=str(path), model="pepino_text", recipe="smoke", protocol=None,
                                        device="cpu", runs_root=str(tmp_path / "runs")))
    res = read_results(tmp_path / "runs")
    assert res[["model", "corpus", "corpus_preset", "protocol", "train_preset"]].values.tolist() == [
        ["pepino_text", "stand_in", "test", "session_script", "smoke"]]


def _rewrite(path, out, change):
    """The bundle at ``path`` with ``change(arrays)`` applied, written to ``out``."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(out, "wb") as fh:
        np.savez(fh, **arrays)
    return out


def _shift_lengths(arrays):
    key = next(k for k in arrays if k.endswith("/lengths"))
    arrays[key] = arrays[key].copy()
    arrays[key][0] += 1  # two utterances trade a row: the total is unchanged
    arrays[key][1] -= 1


def _header(change):
    import json

    def apply(arrays):
        arrays["header"] = np.array(json.dumps(change(json.loads(str(arrays["header"])))))
    return apply


@pytest.mark.parametrize("change, message", [
    (_shift_lengths, r"rows of 2 utterance\(s\) do not sum to what was written.*shifted"),
    (_header(lambda h: [h]), r"the header is a JSON list, not an object"),
    (_header(lambda h: {**h, "manifest": [{**h["manifest"][0], "nosuch": 1}, *h["manifest"][1:]]}),
     r"manifest record 0 \('.*'\) does not fit an utterance"),
    (_header(lambda h: {**h, "manifest": {"a": 1}}), r"'manifest' is not a list"),
])
def test_a_tampered_bundle_is_refused_naming_the_file(tmp_path, change, message) -> None:
    """issue 28: a shifted length table trained silently; a list header or an extra manifest
    key gave a raw AttributeError / TypeError."""
    path, _, _ = _bundle(tmp_path, "pepino_text")
    bad = _rewrite(path, tmp_path / "bad.npz", change)
    with pytest.raises(BundleError, match=rf"bad\.npz: .*{message}") as e:
        load_bundle(bad)
    assert "\n" not in str(e.value)
