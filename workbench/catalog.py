"""What the workbench knows by name, read from its registries: ``workbench list ...``.

Each listing is a table with a ``name`` column and one line of description, built from the
registry that the rest of the library reads (so a listing cannot disagree with what a
command accepts):

=================  ========================================================================
``models``         :func:`workbench.models.list_models`, the first sentence of each builder
``variants``       :func:`workbench.models.list_variants` of one model or of every model
``recipes``        :data:`workbench.training.recipes.RECIPE_NOTES`
``claims``         :data:`workbench.evaluation.claims.CLAIMS`
``protocols``      :func:`workbench.protocols.list_protocols`
``label-schemes``  :data:`workbench.corpus.labels.SCHEMES`
``corpora``        :func:`workbench.corpus.registry.list_corpora`
``corpus-sizes``   :data:`workbench.corpus.synthetic.CORPUS_SIZES`
=================  ========================================================================
"""

from __future__ import annotations

import re
from typing import Callable

import pandas as pd


def _first_sentence(doc: str | None) -> str:
    """The docstring's first sentence: up to a full stop before a capital ("Xu et al. 2019" goes on)."""
    paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
    end = re.search(r"\.\s+(?=[A-Z])", paragraph)
    return paragraph[: end.start() + 1] if end else paragraph


def _models() -> pd.DataFrame:
    from workbench.models.registry import _REGISTRY, get_card, list_models

    rows = []
    for name in list_models():
        card = get_card(name)
        rows.append({"name": name, "inputs": ", ".join(card.model_inputs()), "variants": len(card.variants),
                     "description": _first_sentence(_REGISTRY[name].__doc__)})
    return pd.DataFrame(rows)


def _variants(model: str | None = None) -> pd.DataFrame:
    from workbench.models.registry import get_card, list_models, list_variants

    rows = []
    for m in [model] if model else list_models():
        default = get_card(m).default_variant
        for name, note in list_variants(m).items():
            rows.append({"model": m, "name": name + (" (default)" if name == default else ""), "description": note})
    return pd.DataFrame(rows, columns=["model", "name", "description"])


def _recipes() -> pd.DataFrame:
    from workbench.training.recipes import RECIPE_NOTES

    return pd.DataFrame({"name": list(RECIPE_NOTES), "description": list(RECIPE_NOTES.values())})


def _claims() -> pd.DataFrame:
    from workbench.evaluation.claims import CLAIMS

    return pd.DataFrame([{"name": c.id, "paper": c.paper, "description": c.text} for c in CLAIMS])


def _protocols() -> pd.DataFrame:
    from workbench.protocols import list_protocols

    return _named(list_protocols())


def _label_schemes() -> pd.DataFrame:
    from workbench.corpus.labels import SCHEMES

    return pd.DataFrame([{"name": s.name, "classes": ", ".join(s.classes), "description": s.description}
                         for s in SCHEMES.values()])


def _corpora() -> pd.DataFrame:
    from workbench.corpus.registry import list_corpora

    return _named(list_corpora())


def _corpus_sizes() -> pd.DataFrame:
    from workbench.corpus.synthetic import CORPUS_SIZES

    return pd.DataFrame([{"name": name, "utterances": cfg.n_utterances, "dialogs": cfg.n_sessions * len(cfg.dialogs),
                          "description": f"the synthetic corpus, {cfg.n_sessions} sessions"} for name, cfg in CORPUS_SIZES.items()])


def _named(notes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"name": list(notes), "description": list(notes.values())})


#: What ``workbench list`` lists: noun -> function returning the table.
LISTINGS: dict[str, Callable[..., pd.DataFrame]] = {
    "models": _models,
    "variants": _variants,
    "recipes": _recipes,
    "claims": _claims,
    "protocols": _protocols,
    "label-schemes": _label_schemes,
    "corpora": _corpora,
    "corpus-sizes": _corpus_sizes,
}


def listing(what: str, model: str | None = None) -> pd.DataFrame:
    """The table of ``what`` (a key of :data:`LISTINGS`); ``model`` narrows ``variants`` to one model.

    >>> listing("recipes")["name"].tolist()
    ['paper', 'demo', 'smoke']
    """
    from workbench.errors import WorkbenchError

    if what not in LISTINGS:
        raise WorkbenchError(f"cannot list {what!r}; choose one of {', '.join(LISTINGS)}")
    if model is not None and what != "variants":
        raise WorkbenchError(f"a model name narrows only 'variants', not {what!r}")
    if model is not None:
        from workbench.models.registry import list_models

        if model not in list_models():
            raise WorkbenchError(f"unknown model {model!r}; `workbench list models` lists them")
    return LISTINGS[what](model) if model is not None else LISTINGS[what]()


def format_table(table: pd.DataFrame) -> str:
    """``table`` as left-aligned text columns, the last one unpadded (long descriptions stay whole).

    >>> print(format_table(pd.DataFrame({"name": ["a", "bcd"], "description": ["x", "y z"]})))
    name  description
    a     x
    bcd   y z
    """
    cols = list(table.columns)
    cells = [[str(c) for c in cols]] + [[str(v) for v in row] for row in table.itertuples(index=False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols) - 1)]
    return "\n".join("  ".join([r[i].ljust(widths[i]) for i in range(len(cols) - 1)] + [r[-1]]).rstrip()
                     for r in cells)
