"""docs/extending.md, followed: its model (with a variant), corpus and claim are written from
the page's code blocks, then listed, trained (smoke recipe, a few utterances) and scored."""

from __future__ import annotations

import csv
import importlib
import re
import shutil
import sys
from pathlib import Path

import pytest

from workbench.corpus import registry as corpus_registry
from workbench.models import registry as model_registry

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
LABELS = ("neu", "hap", "ang", "sad")


def guide_files() -> dict[str, str]:
    """file name -> text of every fenced block of the guide whose first line is ``# file: NAME``."""
    blocks = re.findall(r"```[a-z]*\n# file: (\S+)\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    return {name: body for name, body in blocks}


def test_the_guide_has_a_model_a_corpus_and_a_claim():
    assert sorted(guide_files()) == ["my_claims.yaml", "my_corpus.py", "my_models.py"]
    text = GUIDE.read_text(encoding="utf-8")
    for place in ("MODEL_MODULES", "CORPUS_MODULES", "workbench/evaluation/claims.py",
                  "workbench/evaluation/user_claims.py", "docs/models.md", "docs/reproduce.md"):
        assert place in text, place


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """The guide's files written to a folder on sys.path; the registries restored afterwards."""
    monkeypatch.setattr(model_registry, "_REGISTRY", dict(model_registry._REGISTRY))
    monkeypatch.setattr(model_registry, "_CARDS", dict(model_registry._CARDS))
    monkeypatch.setattr(corpus_registry, "_CORPORA", dict(corpus_registry._CORPORA))
    folder = tmp_path / "plugins"
    folder.mkdir()
    for name, body in guide_files().items():
        (folder / name).write_text(body, encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for module in ("my_models", "my_corpus"):
        sys.modules.pop(module, None)


def _toy_corpus(folder: Path, per_session: int = 16) -> Path:
    """``per_session`` utterances of two sessions of the smoke corpus, laid out as my_corpus is."""
    from workbench.corpus import load_corpus

    smoke = load_corpus("synthetic", corpus_size="smoke", label_scheme="iemocap4")
    folder.mkdir()
    rows = []
    for session in ("Ses01", "Ses02"):
        for u in [u for u in smoke if u.session == session][:per_session]:
            shutil.copy(u.audio_path, folder / f"{u.id}.wav")
            rows.append(dict(file=f"{u.id}.wav", emotion=u.label, speaker=u.speaker, session=u.session,
                             transcript=u.text))
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_the_guide_s_model_corpus_and_claim_are_listed_trained_and_scored(plugins, tmp_path):
    from workbench import cli
    from workbench.catalog import listing
    from workbench.corpus import load_corpus
    from workbench.corpus.registry import list_corpora
    from workbench.evaluation.user_claims import load_claims
    from workbench.experiments.reproduce import reproduce
    from workbench.models import list_models, list_variants
    from workbench.training.spec import CorpusOptions

    importlib.import_module("my_models")
    importlib.import_module("my_corpus")
    # listed
    assert "mean_pool" in list_models() and "mean_pool" in listing("models")["name"].tolist()
    assert list(list_variants("mean_pool")) == ["wide"]
    assert "my_corpus" in list_corpora() and "my_corpus" in listing("corpora")["name"].tolist()
    train = next(a for a in cli.build_parser()._subparsers._group_actions[0].choices["train"]._actions
                 if a.dest == "corpus")
    assert "my_corpus" in train.choices
    claims = load_claims(plugins / "my_claims.yaml")
    assert [c.id for c in claims] == ["mine.wide_beats_narrow"]

    root = _toy_corpus(tmp_path / "lab")
    manifest = load_corpus("my_corpus", root=root)
    assert len(manifest) == 32 and {u.label for u in manifest} <= set(LABELS)
    # trained and scored: both conditions of the claim, fold 0 of leave-one-session-out
    ledger = reproduce(claims, CorpusOptions("my_corpus", root=str(root)), tmp_path / "runs", recipe="smoke",
                       folds=[0], n_boot=20, progress=False)
    row = ledger.iloc[0]
    assert (ledger.attrs["trained"], ledger.attrs["reused"]) == (2, 0)
    assert row.claim == "mine.wide_beats_narrow" and row.verdict in ("reproduced", "refuted", "inconclusive"), row.reason
    assert row.n_folds == 1 and -1.0 <= row.difference <= 1.0
