"""Corpus registry, as the model registry: ``@register_corpus(name, description)`` on a loader,
then :func:`~workbench.corpus.load.load_corpus` (``name``) and ``workbench list corpora``.

A loader is called ``loader(root, data_dir=..., **options) -> Manifest``: ``root`` is the folder
or file the user named (``root=`` / ``--root``), ``data_dir`` the workbench's data folder (for
what the loader derives once, e.g. MELD's decoded audio), ``options`` the corpus's own keywords.
A corpus registered with ``root=None`` is generated rather than read: it takes no root, and gets
``corpus_size`` and ``corpus_seed`` instead. The built-in corpora register in the modules of
:data:`CORPUS_MODULES`; a corpus of your own registers wherever it is defined (``docs/extending.md``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from workbench.corpus.manifest import Manifest
from workbench.errors import WorkbenchError

Loader = Callable[..., Manifest]


class CorpusChoiceError(WorkbenchError, ValueError):
    """An unknown corpus, a missing root, or a label scheme that keeps none of a corpus's utterances."""


@dataclass(frozen=True)
class CorpusEntry:
    """One registered corpus: its name, a line for ``workbench list corpora``, what ``root=``
    must point at (None: a generated corpus, no root), and its loader."""

    name: str
    description: str
    root: str | None
    load: Loader


#: The modules whose loaders are the built-in corpora, in the order ``workbench list corpora``
#: shows them. Each must exist: a missing one is an error, not a corpus silently gone.
CORPUS_MODULES: tuple[str, ...] = ("synthetic", "iemocap", "meld", "msp_podcast", "manifest_csv")

_CORPORA: dict[str, CorpusEntry] = {}


def register_corpus(name: str, description: str, root: str | None = "the corpus folder"
                    ) -> Callable[[Loader], Loader]:
    """Register ``loader(root, data_dir=None, **options) -> Manifest`` as corpus ``name``.
    ``root``: what the user's ``root=`` must point at, said in the error when it is missing;
    None for a generated corpus (called with ``root=None``, ``corpus_size=``, ``corpus_seed=``)."""

    def deco(fn: Loader) -> Loader:
        if name in _CORPORA and _CORPORA[name].load is not fn:
            raise ValueError(f"corpus {name!r} registered twice")
        _CORPORA[name] = CorpusEntry(name, description, root, fn)
        return fn

    return deco


def _import_all() -> None:
    # Importing the corpus modules runs their @register_corpus decorators; a missing module
    # raises (ModuleNotFoundError) rather than dropping its corpus from the choices.
    for module in CORPUS_MODULES:
        importlib.import_module(f"workbench.corpus.{module}")


def _order(entry: CorpusEntry) -> int:
    module = entry.load.__module__.rpartition(".")[2]
    return CORPUS_MODULES.index(module) if module in CORPUS_MODULES else len(CORPUS_MODULES)


def list_corpora() -> dict[str, str]:
    """Every registered corpus, name -> description: the built-in ones in :data:`CORPUS_MODULES`
    order, then the others in the order they registered."""
    _import_all()
    return {e.name: e.description for e in sorted(_CORPORA.values(), key=_order)}


def get_corpus(name: str) -> CorpusEntry:
    """The registered corpus ``name``; an unknown name is a :class:`CorpusChoiceError` listing the known."""
    _import_all()
    if name not in _CORPORA:
        raise CorpusChoiceError(f"unknown corpus {name!r}; known: {', '.join(list_corpora())}")
    return _CORPORA[name]


__all__ = ["CORPUS_MODULES", "CorpusChoiceError", "CorpusEntry", "get_corpus", "list_corpora", "register_corpus"]
