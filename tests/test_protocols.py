"""Invariants of every fold protocol, its errors for bad input, and the JSON round trip."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest

from workbench.corpus.manifest import Manifest
from workbench.protocols import PROTOCOLS, Fold, folds_summary, load_folds, make_folds, save_folds
from workbench.testing import make_manifest


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return make_manifest(sessions=5, dialogs_per_session=2, turns_per_dialog=8, seed=3)


@pytest.fixture(scope="module")
def frame(manifest: Manifest) -> pd.DataFrame:
    return manifest.to_frame().set_index("id", drop=False)


def assert_disjoint(fold: Fold) -> None:
    parts = [set(fold.train), set(fold.validation), set(fold.test), set(fold.excluded)]
    assert sum(map(len, parts)) == len(set().union(*parts)), f"{fold.name}: parts overlap"
    assert len(fold.train) == len(parts[0]), f"{fold.name}: duplicate ids in train"


def assert_tests_partition(folds: list[Fold], manifest: Manifest) -> None:
    tests = [i for f in folds for i in f.test]
    assert len(tests) == len(set(tests)), "an utterance is tested twice"
    assert set(tests) == set(manifest.ids)


def column(frame: pd.DataFrame, ids, col: str) -> set:
    return set(frame.loc[list(ids), col])


# ----------------------------------------------------------------------------- loso_session
def test_loso_session_partitions_and_separates_sessions(manifest, frame):
    folds = make_folds(manifest, "loso_session")
    assert [f.name for f in folds] == ["Ses01", "Ses02", "Ses03", "Ses04", "Ses05"]
    assert_tests_partition(folds, manifest)
    for f in folds:
        assert_disjoint(f)
        assert column(frame, f.test, "session") == {f.name}
        assert f.name not in column(frame, f.train, "session")
        assert len(f.train) + len(f.test) == len(manifest) and not f.validation


def test_loso_session_other_speaker_validation(manifest, frame):
    for f in make_folds(manifest, "loso_session", validation="other_speaker"):
        assert column(frame, f.test, "speaker") == {f.name + "F"}
        assert column(frame, f.validation, "speaker") == {f.name + "M"}
        assert f.name not in column(frame, f.train, "session")
        assert "Ses" in f.validation_rule and "other_speaker" in f.validation_rule


def test_random_validation_is_a_stratified_share_of_train(manifest, frame):
    plain = {f.name: f for f in make_folds(manifest, "loso_session")}
    for f in make_folds(manifest, "loso_session", validation="random", validation_share=0.25, seed=1):
        assert_disjoint(f)
        assert set(f.train) | set(f.validation) == set(plain[f.name].train)
        full = Counter(frame.loc[list(plain[f.name].train), "label"])
        val = Counter(frame.loc[list(f.validation), "label"])
        for lab, n in full.items():  # per-label share rounded, as stratification promises
            assert val[lab] == round(0.25 * n)


# ----------------------------------------------------------------------------- loso_speaker
def test_loso_speaker_has_ten_folds_without_test_speaker_in_train(manifest, frame):
    folds = make_folds(manifest, "loso_speaker")
    assert len(folds) == 10
    assert_tests_partition(folds, manifest)
    for f in folds:
        assert_disjoint(f)
        assert column(frame, f.test, "speaker") == {f.name}
        assert f.name not in column(frame, f.train, "speaker")


def test_loso_speaker_session_partner_keeps_test_dialogs_out_of_train(manifest, frame):
    for f in make_folds(manifest, "loso_speaker", validation="session_partner"):
        sess = f.name[:5]
        assert column(frame, f.validation, "session") == {sess}
        assert sess not in column(frame, f.train, "session")
        assert not column(frame, f.test, "dialog") & column(frame, f.train, "dialog")


# ----------------------------------------------------------------------------- session_script
def test_session_script_holds_out_the_script_everywhere(manifest, frame):
    folds = make_folds(manifest, "session_script", held_out="script03")
    assert len(folds) == 5
    assert_tests_partition_of_kept = set()
    for f in folds:
        assert_disjoint(f)
        assert set(f.train) | set(f.validation) | set(f.test) | set(f.excluded) == set(manifest.ids)
        train = frame.loc[list(f.train)]
        assert "script03" not in set(train["script"].dropna())
        assert f.name not in set(train["session"])
        test = frame.loc[list(f.test)]
        assert set(test["session"]) == {f.name}
        assert set(test["script"].dropna()) == {"script03"}
        # every improvised utterance of the test session is kept in test
        sess = frame[frame["session"] == f.name]
        assert set(sess.loc[sess["kind"] == "improvised", "id"]) <= set(f.test)
        # what is excluded: this session's other scripts and script03 of other sessions
        excl = frame.loc[list(f.excluded)]
        assert all((s == f.name) != (sc == "script03") for s, sc in zip(excl["session"], excl["script"]))
        assert_tests_partition_of_kept |= set(f.test)
    improvised = set(frame.loc[frame["kind"] == "improvised", "id"])
    assert improvised <= assert_tests_partition_of_kept


def test_session_script_options(manifest, frame):
    rotate = make_folds(manifest, "session_script", held_out="rotate")
    assert [f.options["fold_held_out"] for f in rotate] == [
        ["script01"], ["script02"], ["script03"], ["script01"], ["script02"]
    ]
    each = make_folds(manifest, "session_script", held_out="each")
    assert len(each) == 15 and each[1].name == "Ses01-script02"
    two = make_folds(manifest, "session_script", held_out=["script01", "script02"])
    for f in two:
        assert set(frame.loc[list(f.train), "script"].dropna()) == {"script03"}
        assert set(frame.loc[list(f.test), "script"].dropna()) == {"script01", "script02"}


def test_session_script_errors_name_protocol_fold_and_what_is_missing(manifest):
    no_script = Manifest(u for u in manifest if not (u.session == "Ses02" and u.script == "script03"))
    with pytest.raises(ValueError, match=r"session_script.*fold 'Ses02'.*script03"):
        make_folds(no_script, "session_script", held_out="script03")
    with pytest.raises(ValueError, match="no scripted utterances"):
        make_folds(make_manifest(scripted=False, seed=0), "session_script")
    with pytest.raises(ValueError, match="script09"):
        make_folds(manifest, "session_script", held_out="script09")
    df = manifest.to_frame().drop(columns=["script"])
    with pytest.raises(ValueError, match="session_script.*'script'"):
        make_folds(df, "session_script")


# ----------------------------------------------------------------------------- random folds
@pytest.mark.parametrize("protocol,n", [("random_kfold", 5), ("tenfold_811", 10)])
def test_random_folds_are_stratified_and_partition(manifest, frame, protocol, n):
    folds = make_folds(manifest, protocol, seed=7)
    assert len(folds) == n
    assert_tests_partition(folds, manifest)
    sizes = [len(f.test) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for lab in set(frame["label"]):
        per_fold = [sum(frame.loc[i, "label"] == lab for i in f.test) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1, (lab, per_fold)
    for f in folds:
        assert_disjoint(f)
        assert len(f.train) + len(f.validation) + len(f.test) == len(manifest)


def test_tenfold_811_validates_on_the_next_part(manifest):
    folds = make_folds(manifest, "tenfold_811")
    for k, f in enumerate(folds):
        assert f.validation == folds[(k + 1) % 10].test
        assert abs(len(f.train) - 0.8 * len(manifest)) <= 2


def test_seed_changes_random_folds_and_nothing_else(manifest):
    a = make_folds(manifest, "random_kfold", seed=0)
    assert a == make_folds(manifest, "random_kfold", seed=0)
    assert [f.test for f in a] != [f.test for f in make_folds(manifest, "random_kfold", seed=1)]


# ----------------------------------------------------------------------------- official
def test_official_uses_split_column():
    m = make_manifest(sessions=4, splits=True, seed=0)
    (fold,) = make_folds(m, "official")
    df = m.to_frame().set_index("id")
    assert set(df.loc[list(fold.test), "session"]) == {"Ses04"}
    assert set(df.loc[list(fold.validation), "session"]) == {"Ses03"}
    assert set(df.loc[list(fold.train), "session"]) == {"Ses01", "Ses02"}


def test_official_msp_style_split_names_give_one_fold_per_test_set():
    df = make_manifest(sessions=4, seed=0).to_frame()
    df["split"] = df["session"].map({"Ses01": "Train", "Ses02": "Development", "Ses03": "Test1", "Ses04": "Test2"})
    folds = make_folds(df, "official")
    assert [f.name for f in folds] == ["test1", "test2"]
    assert set(folds[0].excluded) == set(folds[1].test)
    df.loc[0, "split"] = "holdout"
    with pytest.raises(ValueError, match=r"official.*'holdout'"):
        make_folds(df, "official")


def test_official_without_split_fails_clearly(manifest):
    with pytest.raises(ValueError, match=r"official.*lack a 'split' value"):
        make_folds(manifest, "official")


# ----------------------------------------------------------------------------- bad input
def test_unknown_protocol_and_option(manifest):
    with pytest.raises(ValueError, match=r"unknown protocol 'loso'.*loso_session"):
        make_folds(manifest, "loso")
    with pytest.raises(ValueError, match=r"loso_session.*unknown option.*held_out"):
        make_folds(manifest, "loso_session", held_out="script01")
    with pytest.raises(ValueError, match=r"loso_speaker.*unknown validation 'other_speaker'"):
        make_folds(manifest, "loso_speaker", validation="other_speaker")


def test_missing_or_empty_speaker_field(manifest):
    df = manifest.to_frame()
    with pytest.raises(ValueError, match=r"loso_speaker.*no 'speaker' field"):
        make_folds(df.drop(columns=["speaker"]), "loso_speaker")
    df.loc[3, "speaker"] = ""
    with pytest.raises(ValueError, match=rf"loso_speaker.*1 utterance.*'speaker'.*{df.loc[3, 'id']}"):
        make_folds(df, "loso_speaker")


def test_option_that_empties_a_fold_is_an_error():
    one_speaker = Manifest(u for u in make_manifest(sessions=2, seed=0) if u.speaker != "Ses02M")
    with pytest.raises(ValueError, match=r"loso_session.*fold 'Ses02'.*validation set is empty"):
        make_folds(one_speaker, "loso_session", validation="other_speaker")
    with pytest.raises(ValueError, match=r"loso_session.*fold 'Ses01'.*train set is empty"):
        make_folds(make_manifest(sessions=1, seed=0), "loso_session")


# ----------------------------------------------------------------------------- files
@pytest.mark.parametrize("protocol", sorted(set(PROTOCOLS) - {"official"}))
def test_deterministic_and_json_round_trip(manifest, tmp_path, protocol):
    folds = make_folds(manifest, protocol)
    assert folds == make_folds(manifest, protocol)
    path = save_folds(folds, tmp_path / f"{protocol}.json")
    assert load_folds(path) == folds
    assert json.loads(path.read_text())["format"] == "workbench-folds"
    assert [p.name for p in tmp_path.iterdir()] == [f"{protocol}.json"]  # no temp file left


def test_load_folds_rejects_other_files(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"format": "something"}')
    with pytest.raises(ValueError, match="x.json: not a workbench-folds file"):
        load_folds(bad)
    bad.write_text("{oops")
    with pytest.raises(ValueError, match=r"x.json:1: not a folds file"):
        load_folds(bad)


def test_folds_summary(manifest):
    s = folds_summary(make_folds(manifest, "session_script"))
    assert list(s.columns) == ["protocol", "fold", "train", "validation", "test", "excluded", "validation_rule"]
    assert (s["train"] + s["test"] + s["excluded"] == len(manifest)).all()


# ----------------------------------------------------------------------------- superb
@pytest.fixture(scope="module")
def standard_table() -> pd.DataFrame:
    """The shipped standard 4-class list as a manifest table (sessions named as the loader does)."""
    from workbench.corpus.standard import load_standard

    std = load_standard()
    return std.assign(session="Ses0" + std["session"].astype(str))


def test_superb_folds_test_on_one_session_and_hold_out_a_fifth_of_training(standard_table):
    folds = make_folds(standard_table, "superb")
    assert [f.name for f in folds] == ["Ses01", "Ses02", "Ses03", "Ses04", "Ses05"]
    by_session = standard_table.groupby("session")["id"].apply(set)
    for f in folds:
        assert_disjoint(f)
        assert set(f.test) == by_session[f.name]
        pool = set(standard_table["id"]) - by_session[f.name]
        assert set(f.train) | set(f.validation) == pool
        assert len(f.validation) == len(pool) - int(0.8 * len(pool))  # s3prl's int((1 - 0.2) * n)
        assert 0.199 < len(f.validation) / len(pool) < 0.201
    assert [len(f.validation) for f in folds] == [890, 902, 876, 900, 858]
    assert "s3prl's split-file order" in folds[0].validation_rule


def test_superb_dev_split_is_torch_random_split_as_s3prl_calls_it(standard_table):
    """s3prl (downstream/emotion/expert.py): torch.manual_seed(0), then random_split of the
    training utterances, listed as its train_meta_data.json lists them, into 80 % / 20 %."""
    import torch
    from torch.utils.data import random_split

    folds = make_folds(standard_table, "superb")
    listing = standard_table.sort_values("superb_order")
    for f in folds:
        names = listing.loc[listing["session"] != f.name, "id"].tolist()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            n_train = int((1 - 0.2) * len(names))
            train, dev = random_split(names, [n_train, len(names) - n_train])
        assert set(dev) == set(f.validation) and set(train) == set(f.train)


def test_superb_is_deterministic_and_follows_its_seed(standard_table):
    a = make_folds(standard_table, "superb")
    assert a == make_folds(standard_table, "superb", seed=0)
    b = make_folds(standard_table, "superb", seed=1)
    assert [f.test for f in a] == [f.test for f in b] and a[0].validation != b[0].validation
    half = make_folds(standard_table, "superb", valid_ratio=0.5)[0]
    assert abs(len(half.validation) - len(half.train)) <= 1


def test_superb_on_other_ids_uses_manifest_order(manifest):
    folds = make_folds(manifest, "superb")
    assert all("manifest order" in f.validation_rule for f in folds)
    with pytest.raises(ValueError, match=r"superb.*valid_ratio=1.0"):
        make_folds(manifest, "superb", valid_ratio=1.0)
