"""Paper fidelity: for every row of the five papers' tables, how the workbench runs it.

Each row of :data:`workbench.evaluation.papers.RESULTS` either names a (model, variant) that
a model card declares, or says why nothing runs it (a number one paper cites from another).
:func:`fidelity_table` turns that into one line per row: the command that runs it, what the
workbench substitutes for the paper's inputs (word embeddings, video features, the ASR
engine) and where the recipe deviates from the paper (values the paper does not state, which
the card's notes mark as ours). ``docs/fidelity.md`` is generated from it
(``python -m workbench.evaluation.fidelity docs/fidelity.md``); a test keeps the two equal.

:func:`spec_for_row` turns one paper row into the :class:`~workbench.training.spec.RunSpec`
that reproduces it, or a one-line :class:`FidelityError` naming the row.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.evaluation.papers import (
    PAPER_SETUP,
    PAPERS,
    RESULTS,
    PaperResult,
    describe_text_encoder,
    exact_text_encoder,
    text_encoder_difference,
)
from workbench.models.registry import get_card
from workbench.training.recipes import get_recipe
from workbench.training.spec import RunSpec

#: The workbench's name of each paper corpus (``workbench.corpus.load_corpus``).
CORPORA = {"IEMOCAP": "iemocap", "MSP-Podcast": "msp_podcast", "MELD": "meld"}
#: What stands in for each paper's video features.
VIDEO_STAND_IN = ("visual descriptors of the corpus (synthetic: simulated, 3 fps; IEMOCAP: workbench.features."
                  "iemocap_video) stand in for ResNet-101 2048-d features at 3 fps")


class FidelityError(WorkbenchError, ValueError):
    """A paper row that no workbench configuration runs (or that names an undeclared variant)."""


def _label(r: PaperResult) -> str:
    return f"{r.paper} {r.table} {r.paper_model!r} ({r.modalities}, {r.corpus})"


def find_row(paper: str, paper_model: str, table: str | None = None, text_source: str | None = None,
             corpus: str | None = None) -> PaperResult:
    """The one paper row with these fields; :class:`FidelityError` naming the candidates otherwise."""
    if paper not in PAPERS:
        raise FidelityError(f"unknown paper {paper!r}; choose one of {sorted(PAPERS)}")
    rows = [r for r in RESULTS if r.paper == paper and r.paper_model == paper_model
            and (table is None or r.table == table) and (text_source is None or r.text_source == text_source)
            and (corpus is None or r.corpus == corpus)]
    if len(rows) != 1:
        names = sorted({f"{r.table}: {r.paper_model!r} ({r.text_source or 'no text'}, {r.corpus})"
                        for r in RESULTS if r.paper == paper and (not rows or r in rows)})
        what = "no row" if not rows else f"{len(rows)} rows"
        raise FidelityError(f"{paper}: {what} named {paper_model!r}; give table=, text_source= or corpus= to pick one "
                            f"of {names[:12]}")
    return rows[0]


def spec_for_row(row: PaperResult, recipe: str = "paper", **spec_options: Any) -> RunSpec:
    """The run of ``row``'s (model, variant) under training ``recipe`` and the row's protocol,
    class set and text source, with the paper's number of seeds under the ``paper`` recipe
    (:func:`paper_seeds`; ``seeds=`` overrides); :class:`FidelityError` when no
    configuration runs the row."""
    if row.model is None:
        raise FidelityError(f"{_label(row)}: no workbench configuration runs this row ({row.reason or 'no reason given'})")
    card = get_card(row.model)
    if row.variant and row.variant not in card.variants:
        raise FidelityError(f"{_label(row)}: model {row.model!r} declares no variant {row.variant!r}; "
                            f"declared: {sorted(card.variants)}")
    if recipe == "paper" and "seeds" not in spec_options:
        spec_options["seeds"] = paper_seeds(row.paper)
    return RunSpec.create(row.model, recipe, variant=row.variant or None, protocol=row.protocol,
                          label_scheme=row.label_scheme, text_source=row.text_source or "oracle", **spec_options)


def paper_seeds(paper: str) -> tuple[int, ...]:
    """The seeds that run ``paper``'s set-up: as many as the paper trained per fold
    (:data:`~workbench.evaluation.papers.PAPER_SETUP`; Pepino et al. and Yoon et al.: 10), one
    where it does not say."""
    return tuple(range(int(PAPER_SETUP.get(paper, {}).get("seeds") or 1)))  # type: ignore[call-overload]


def _recipe(row: PaperResult, text_encoder: str | None = None):
    """The paper recipe of ``row``'s model and variant, with ``text_encoder`` when the row reads text;
    a text encoder that cannot be used (a missing GloVe file) is a :class:`TextEncoderOptionError`."""
    try:
        return get_recipe(row.model, "paper", variant=row.variant or None,  # type: ignore[arg-type]
                          text_encoder=text_encoder if _reads_text(row) else None)
    except ValueError as e:
        if text_encoder is None or isinstance(e, WorkbenchError):
            raise
        raise TextEncoderOptionError(f"--text-encoder {text_encoder}: {' '.join(str(e).split())}") from None


class TextEncoderOptionError(WorkbenchError, ValueError):
    """``--text-encoder`` names something the recipes cannot use (a GloVe file that does not exist)."""


def _reads_text(row: PaperResult) -> bool:
    recipe = get_recipe(row.model, "paper", variant=row.variant or None)  # type: ignore[arg-type]
    return "text" in get_card(row.model).model_inputs(recipe.model_config)  # type: ignore[arg-type]


def _glove_dim(path: str) -> int | None:
    """The vector size of a GloVe text file from its first vector line (None if unreadable)."""
    try:
        with open(Path(path).expanduser(), encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec header
                return len(parts) - 1 if parts else None
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _text_input(row: PaperResult, text_encoder: str | None) -> dict[str, Any] | None:
    """The text feature spec a run of ``row`` reads (as a run stores it), None without text."""
    if not _reads_text(row):
        return None
    spec = _recipe(row, text_encoder).features["text"]
    dim = _glove_dim(spec.config["path"]) if spec.extractor == "text_glove" else None
    return {"extractor": spec.extractor, "config": dict(spec.config), "dim": dim}


def _text_is_exact(row: PaperResult, text_encoder: str | None) -> bool:
    text = _text_input(row, text_encoder)
    return text is not None and bool(row.text_encoder) and text_encoder_difference(row.text_encoder, text) is None


def _command(row: PaperResult, text_encoder: str | None = None) -> str:
    recipe = _recipe(row)
    parts = [f"workbench train {row.model} --recipe paper"]
    if row.variant:
        parts.append(f"--variant {row.variant}")
    if recipe.protocol != row.protocol:
        parts.append(f"--protocol {row.protocol}")
    if recipe.label_scheme != row.label_scheme:
        parts.append(f"--label-scheme {row.label_scheme}")
    if row.text_source == "asr":
        parts.append("--text-source asr")
    if text_encoder and _reads_text(row):
        parts.append(f"--text-encoder {text_encoder}")
    seeds = paper_seeds(row.paper)
    if len(seeds) > 1:  # the paper's seed count (one seed, the default, where it states none)
        parts.append(f"--seeds {','.join(map(str, seeds))}")
    parts.append(f"--corpus {CORPORA.get(row.corpus, row.corpus)} --root ...")
    return " ".join(parts)


def _substitutions(row: PaperResult, text_encoder: str | None = None) -> list[str]:
    recipe = _recipe(row, text_encoder)
    reads = get_card(row.model).model_inputs(recipe.model_config)  # type: ignore[arg-type]
    out = []
    text = _text_input(row, text_encoder)
    if text is not None and row.text_encoder and text_encoder_difference(row.text_encoder, text) is not None:
        exact = exact_text_encoder(row.text_encoder)
        hint = f" (exact with `--text-encoder {exact}`)" if exact and not text_encoder else ""
        out.append(f"{describe_text_encoder(text)} for {row.text_encoder}{hint}")
    if any(k in reads for k in ("video", "visual")):
        out.append(VIDEO_STAND_IN)
    if row.text_source == "asr":
        out.append(f"pocketsphinx (offline) for {PAPER_SETUP[row.paper]['asr']}")
    return out


def _split_notes(notes: str) -> list[str]:
    """A recipe's notes, split at the ``;`` between notes (not at one inside parentheses)."""
    out, depth, start = [], 0, 0
    for i, c in enumerate(notes):
        depth += (c == "(") - (c == ")")
        if c == ";" and depth <= 0:
            out.append(notes[start:i])
            start = i + 1
    return [n.strip() for n in [*out, notes[start:]] if n.strip()]


def _deviations(row: PaperResult, text_encoder: str | None = None) -> list[str]:
    recipe = _recipe(row, text_encoder)
    exact_text = _text_is_exact(row, text_encoder)
    out = [n for n in _split_notes(recipe.notes) if not n.startswith("variant ")
           # the encoders chosen are listed under substitutions (or are the paper's)
           and not n.startswith(("text encoder:", "speech encoder:"))
           # the card's note on the MiniLM stand-in is moot when the run reads the paper's encoder
           and not (exact_text and "MiniLM" in n)]
    if recipe.protocol != row.protocol or recipe.label_scheme != row.label_scheme:
        out.append(f"the model's own recipe is {recipe.protocol}/{recipe.label_scheme}; this row was run by "
                   f"{row.paper} under {row.protocol}/{row.label_scheme}")
    return out


def fidelity_table(text_encoder: str | None = None) -> pd.DataFrame:
    """One row per paper row: ``paper, table, system, modalities, text_source, corpus, model,
    variant, runs_as, substitutions, deviations`` (``runs_as`` holds the reason where nothing
    runs the row). :class:`FidelityError` for a row with neither a variant nor a reason.

    ``text_encoder`` (a text checkpoint or a GloVe file, as ``workbench train --text-encoder``)
    is what rows that read text run with: the MiniLM substitution is then gone from rows whose
    paper used that encoder (BERT-base uncased, or GloVe of the paper's size), and listed as
    what it is for the others."""
    rows = []
    for r in RESULTS:
        base = dict(paper=r.paper, table=r.table, system=r.paper_model, modalities=r.modalities,
                    text_source=r.text_source or "-", corpus=r.corpus, model=r.model or "", variant=r.variant)
        if r.model is None:
            if not r.reason:
                raise FidelityError(f"{_label(r)}: neither a model/variant nor a reason; add one in "
                                    "workbench/evaluation/papers.py")
            rows.append({**base, "runs_as": f"not run: {r.reason}", "substitutions": "", "deviations": ""})
            continue
        spec_for_row(r)  # raises for an undeclared variant
        rows.append({**base, "runs_as": _command(r, text_encoder),
                     "substitutions": "; ".join(_substitutions(r, text_encoder)),
                     "deviations": "; ".join(_deviations(r, text_encoder))})
    return pd.DataFrame(rows)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(text_encoder: str | None = None) -> str:
    """The text of ``docs/fidelity.md``: every paper row and how the workbench runs it
    (with ``text_encoder``: as runs with that text encoder would, see :func:`fidelity_table`)."""
    t = fidelity_table(text_encoder)
    n_run = int((t["model"] != "").sum())
    lines = [
        "# Paper fidelity: every row of the five papers' tables",
        "",
        "Generated by `python -m workbench.evaluation.fidelity docs/fidelity.md` from",
        "`workbench/evaluation/papers.py` (the papers' numbers, each row's model and variant) and the",
        "model cards (recipes, variants, notes); `tests/evaluation/test_fidelity.py` fails when this",
        "file is out of date or a row has neither a variant nor a reason.",
        "",
        f"{len(t)} rows; {n_run} run by a workbench configuration, {len(t) - n_run} cited from other work.",
        "`--root ...` is your copy of the corpus; on the built-in synthetic corpus drop `--corpus/--root`.",
        "Substitutions are what the workbench reads instead of the paper's inputs (it ships no",
        "GloVe, BERT or ResNet weights and no cloud ASR); deviations are settings the paper does not",
        "state (ours) or that differ from it, as each model card records them. With your own copy of",
        "the paper's text encoder (`--text-encoder bert-base-uncased` or a GloVe file, see",
        "docs/encoders.md) the word-embedding substitution is gone from the rows of that paper.",
        "",
    ]
    for paper, group in t.groupby("paper", sort=False):
        lines += [f"## {PAPERS[str(paper)]}", "",
                  "| table | system | modalities | text | runs as | substitutions | deviations |",
                  "|---|---|---|---|---|---|---|"]
        for _, r in group.iterrows():
            runs = r["runs_as"] if r["model"] == "" else f"`{r['runs_as']}`"
            lines.append("| " + " | ".join(_cell(x) for x in (
                r["table"], r["system"], r["modalities"], r["text_source"], runs, r["substitutions"] or "-",
                r["deviations"] or "-")) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench.evaluation.fidelity [OUT.md] [--text-encoder X]`` (stdout without OUT)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m workbench.evaluation.fidelity")
    parser.add_argument("out", nargs="?", default=None, help="markdown file to write (default: print)")
    parser.add_argument("--text-encoder", default=None,
                        help="the table for runs with this text encoder (checkpoint or GloVe file)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        text = render_markdown(args.text_encoder)
    except WorkbenchError as e:  # one line, as the workbench command prints it
        print(f"{parser.prog}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
