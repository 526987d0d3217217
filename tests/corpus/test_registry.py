"""The corpus registry: every corpus load_corpus reads is declared with @register_corpus, and
the CLI's choices and `workbench list corpora` come from it."""

from __future__ import annotations

import pytest

from workbench.corpus import load_corpus, registry
from workbench.corpus.registry import CorpusChoiceError, get_corpus, list_corpora, register_corpus


def test_the_built_in_corpora_are_registered_in_module_order():
    assert list(list_corpora()) == ["synthetic", "iemocap", "meld", "msp_podcast", "csv"]
    assert get_corpus("synthetic").root is None and get_corpus("meld").root == "the MELD.Raw folder"


def test_a_missing_corpus_module_is_an_error_not_a_corpus_gone(monkeypatch):
    monkeypatch.setattr(registry, "CORPUS_MODULES", (*registry.CORPUS_MODULES, "no_such_corpus"))
    with pytest.raises(ModuleNotFoundError, match="workbench.corpus.no_such_corpus"):
        list_corpora()


def test_a_registered_corpus_is_loaded_listed_and_needs_its_root(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "_CORPORA", dict(registry._CORPORA))  # leave the real registry as it was
    calls = []

    @register_corpus("toy", "a toy corpus for this test", root="the toy folder")
    def load_toy(root, data_dir=None, **options):
        calls.append((root, data_dir, options))
        return "manifest"

    assert list(list_corpora())[-1] == "toy"
    assert load_corpus("toy", root=tmp_path, data_dir="d", strict=True) == "manifest"
    assert calls == [(tmp_path, "d", {"strict": True})]
    with pytest.raises(CorpusChoiceError, match="corpus='toy' needs root= pointing at the toy folder"):
        load_corpus("toy")
    with pytest.raises(CorpusChoiceError, match="unknown corpus 'toys'; known: synthetic, .*, toy"):
        load_corpus("toys")
    with pytest.raises(ValueError, match="corpus 'toy' registered twice"):
        register_corpus("toy", "again")(lambda root, **o: None)
