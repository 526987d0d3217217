"""Every paper row is runnable or says why not, and docs/fidelity.md is generated from that."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from workbench.evaluation import fidelity
from workbench.evaluation.fidelity import FidelityError, fidelity_table, find_row, render_markdown, spec_for_row

DOC = Path(__file__).resolve().parents[2] / "docs" / "fidelity.md"


def test_docs_fidelity_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/fidelity.md is stale: python -m workbench.evaluation.fidelity docs/fidelity.md")


def test_a_row_runs_with_its_variant_protocol_classes_and_text():
    spec = spec_for_row(find_row("yoon2020", "AMH-3"))
    assert (spec.model, spec.settings.variant, spec.protocol, spec.settings.label_scheme) == (
        "amh", "hops_3", "tenfold_811", "iemocap7")
    spec = spec_for_row(find_row("xu2019", "Proposed", text_source="asr"), recipe="smoke")
    assert (spec.model, spec.text_source, spec.settings.name) == ("xu_alignment", "asr", "smoke")
    # Sun et al. rerun Xu et al.'s model under their own 7-class 10-fold set-up
    spec = spec_for_row(find_row("sun2021", "Xu et al. [17]"))
    assert (spec.protocol, spec.settings.label_scheme) == ("tenfold_811", "iemocap7")


def test_a_cited_row_is_refused_naming_it():
    with pytest.raises(FidelityError, match=r"xu2019 Table 1 'CNN\+LSTM \(Satt et al., 2018\)'.*cited from Satt"):
        spec_for_row(find_row("xu2019", "CNN+LSTM (Satt et al., 2018)"))


def test_ambiguous_or_unknown_rows_name_the_choices():
    with pytest.raises(FidelityError, match="2 rows named 'Proposed'.*text_source="):
        find_row("xu2019", "Proposed")
    with pytest.raises(FidelityError, match="no row named 'Nope'"):
        find_row("xu2019", "Nope")
    with pytest.raises(FidelityError, match="unknown paper 'xu2020'"):
        find_row("xu2020", "Proposed")


def test_a_row_without_variant_or_reason_fails(monkeypatch):
    bad = dataclasses.replace(fidelity.RESULTS[2], model=None, reason="")
    monkeypatch.setattr(fidelity, "RESULTS", (*fidelity.RESULTS, bad))
    with pytest.raises(FidelityError, match="neither a model/variant nor a reason"):
        fidelity_table()
    undeclared = dataclasses.replace(fidelity.RESULTS[0], variant="no_such_variant")
    monkeypatch.setattr(fidelity, "RESULTS", (undeclared,))
    with pytest.raises(FidelityError, match="declares no variant 'no_such_variant'"):
        fidelity_table()


def test_the_table_lists_substitutions_and_deviations():
    t = fidelity_table().set_index(["paper", "table", "system", "text_source"])
    amh = t.loc[("yoon2020", "Table 1", "AMH-ASR (ours)", "asr")]
    assert "--variant hops_7" in amh.runs_as and "--text-source asr" in amh.runs_as
    assert "pocketsphinx" in amh.substitutions and "ResNet-101" in amh.substitutions
    assert "GloVe-300" in amh.substitutions
    audio = t.loc[("xu2019", "Table 1", "LSTM+Attn (speech-only, our implementation)", "-")]
    assert "GloVe" not in audio.substitutions  # reads no text


def test_rows_run_with_the_papers_seed_counts():
    # Pepino et al. (Table 1: 10 seeds) and Yoon et al. (sec. 4.3: 10 experiments per fold)
    t = fidelity_table().set_index(["paper", "table", "system", "text_source"])
    ten = "--seeds 0,1,2,3,4,5,6,7,8,9"
    assert ten in t.loc[("pepino2020", "Table 1", "EF-PT", "oracle")].runs_as
    assert ten in t.loc[("yoon2020", "Table 2", "AMH-3", "oracle")].runs_as
    assert "--seeds" not in t.loc[("xu2019", "Table 2", "Proposed", "oracle")].runs_as  # states none: one seed
    assert spec_for_row(find_row("yoon2020", "AMH-3")).seeds == tuple(range(10))
    assert spec_for_row(find_row("pepino2020", "BERT", corpus="IEMOCAP")).seeds == tuple(range(10))
    assert spec_for_row(find_row("sun2021", "MCSAN (ours)", table="Table 1")).seeds == (0,)
    assert spec_for_row(find_row("yoon2020", "AMH-3"), seeds=[0]).seeds == (0,)
    assert spec_for_row(find_row("yoon2020", "AMH-3"), recipe="demo").seeds == (0,)


def test_a_missing_glove_file_is_one_line(tmp_path, capsys):
    """issue 28: `fidelity.py --text-encoder` with a missing GloVe file gave a raw traceback."""
    from workbench.evaluation.fidelity import main

    assert main(["--text-encoder", str(tmp_path / "glove.6B.300d.txt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m workbench.evaluation.fidelity: error: --text-encoder ")
    assert "GloVe file does not exist" in err[0]
