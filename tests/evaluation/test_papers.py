"""The papers' numbers match the paper files; the comparison flags what differs."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.evaluation.papers import PAPERS, RESULTS, comparison_table, differences, paper_table, side_by_side
from workbench.models import list_models

# The paper texts ship with the project's shared material, not with the package.
PAPER_DIR = next((p / "shared" / "papers" for p in Path(__file__).resolve().parents if (p / "shared" / "papers").is_dir()), None)


def _row(t: pd.DataFrame, **where) -> pd.Series:
    sel = t
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, f"{where} matches {len(sel)} rows"
    return sel.iloc[0]


def test_spot_checks_against_the_papers():
    t = paper_table()
    r = _row(t, paper="xu2019", paper_model="Hard alignment")
    assert (r.wa, r.ua, r.table, r.text_source) == (0.715, 0.686, "Table 2", "oracle")
    r = _row(t, paper="krishna2020", paper_model="CMA+Raw waveform (proposed)")
    assert r.ua == 0.7282 and math.isnan(r.wa) and r.model == "cma_raw" and r.protocol == "loso_session"
    r = _row(t, paper="yoon2020", paper_model="AMH-ASR (ours)")
    assert (r.wa, r.wa_spread, r.ua, r.ua_spread, r.text_source) == (0.611, 0.024, 0.595, 0.036, "asr")
    assert r.label_scheme == "iemocap7" and r.protocol == "tenfold_811"
    r = _row(t, paper="yoon2020", paper_model="AMH-4")
    assert (r.wa, r.ua, r.variant) == (0.612, 0.586, "hops_4")
    r = _row(t, paper="sun2021", paper_model="MCSAN w/o text")
    assert (r.wa, r.ua, r.modalities) == (0.491, 0.404, "A")
    r = _row(t, paper="sun2021", corpus="MELD", paper_model="MCSAN (ours)")
    assert r.f1 == 0.592 and math.isnan(r.ua)
    r = _row(t, paper="pepino2020", corpus="IEMOCAP", paper_model="Glove")
    assert (r.ua, r.ua_spread, r.av_auc, r.spread, r.protocol) == (0.478, 0.001, 0.736, "iqr", "session_script")
    r = _row(t, paper="pepino2020", corpus="MSP-Podcast", paper_model="EF-WS")
    assert (r.ua, r.av_auc, r.text_source, r.protocol) == (0.591, 0.823, "asr", "official")


def test_every_row_is_well_formed():
    t = paper_table()
    assert set(t.paper) == set(PAPERS)
    known = set(list_models())
    assert set(t.model.dropna()) <= known
    assert t.protocol.isin(["loso_session", "tenfold_811", "session_script", "official"]).all()
    assert t.text_source.isin(["oracle", "asr", ""]).all()
    from workbench.corpus.labels import SCHEMES

    assert set(t.label_scheme) <= set(SCHEMES)
    assert ((t.text_source == "") == ~t.modalities.str.contains("T")).all()
    m = t[["wa", "ua", "f1", "av_auc"]].to_numpy(float)
    assert np.nanmin(m) > 0.3 and np.nanmax(m) < 1
    assert t[["wa", "ua", "f1", "av_auc"]].notna().any(axis=1).all()
    assert not t.duplicated(["paper", "paper_model", "modalities", "text_source", "corpus", "table"]).any()


@pytest.mark.skipif(PAPER_DIR is None, reason="paper texts not available")
def test_every_number_occurs_in_its_paper():
    """Each stored metric, printed the ways papers print it, appears in the paper's text."""
    files = {p.stem.split("_")[0]: p.read_text(encoding="utf-8") for p in PAPER_DIR.glob("*.md")}
    for r in RESULTS:
        text = files[r.paper].replace(",", ".")  # Pepino prints 56,0
        for v in (r.wa, r.ua, r.f1, r.av_auc, r.wa_spread, r.ua_spread):
            if math.isnan(v):
                continue
            forms = {f"{v:.3f}", f"{v * 100:.2f}", f"{v * 100:.1f}", f"{v * 100:g}", f"{v:.3f}".lstrip("0")}
            assert any(re.search(rf"(?<![\d.]){re.escape(s)}(?!\d)", text) for s in forms), (r.paper, r.paper_model, v)


def _run_results(model: str, protocol: str, corpus: str = "synthetic", text: str = "oracle", scheme: str = "iemocap4",
                 variant: str = "", seeds: int = 1, recipe: str = "paper", chash: str = "deadbeefcafe") -> pd.DataFrame:
    config = json.dumps({"features": {"text": {"extractor": "text_contextual"}}})
    return pd.DataFrame(
        [dict(model=model, variant=variant, config_hash=chash, corpus=corpus, protocol=protocol, label_scheme=scheme,
              text_source=text, fold=f, seed=s, wa=0.6 + 0.01 * f, ua=0.5 + 0.01 * f + 0.1 * s, weighted_f1=0.55,
              av_auc=0.8, train_preset=recipe, config_json=config)
         for f in range(5) for s in range(seeds)]
    )  # fmt: skip


def test_comparison_flags_differences():
    res = pd.concat([_run_results("xu_alignment", "loso_session"), _run_results("pepino_text", "loso_session")])
    c = comparison_table(res)
    runs = c[c.source == "run"]
    assert runs.model.tolist() == ["pepino_text", "xu_alignment"]
    assert runs.ua.tolist() == pytest.approx([0.52, 0.52]) and (runs.n_runs == 5).all()
    xu = c[(c.model == "xu_alignment") & (c.source == "xu2019")]
    assert len(xu) == 2  # Table 1 (ASR) and Table 2 (oracle)
    oracle = xu[xu.text_source == "oracle"].iloc[0]
    assert oracle.differs == ("corpus: synthetic stand-in vs IEMOCAP; "
                              "text encoder: MiniLM-L6 contextual word embeddings stand in for GloVe-300")
    asr = xu[xu.text_source == "asr"].iloc[0]
    assert "text source: oracle vs asr" in asr.differs
    sun = c[(c.model == "xu_alignment") & (c.source == "sun2021")].iloc[0]
    assert "protocol: loso_session vs tenfold_811" in sun.differs and "label scheme: iemocap4 vs iemocap7" in sun.differs
    pep = c[(c.source == "pepino2020") & (c.corpus == "IEMOCAP")]
    assert pep.differs.str.contains("protocol: loso_session vs session_script").all()


def test_differences_on_a_real_corpus_and_audio_rows():
    paper = _row(paper_table(), paper="xu2019", paper_model="LSTM+Attn (speech-only, our implementation)")
    run = pd.Series(dict(corpus="iemocap", protocol="loso_session", label_scheme="iemocap4", text_source="oracle",
                         variant="", train_preset="paper"))
    assert differences(run, paper) == []  # an audio-only paper row has no text source to differ on
    assert differences(run.copy().replace({"iemocap": "meld"}), paper) == ["corpus: meld vs IEMOCAP"]
    with pytest.raises(ValueError, match="no results"):
        comparison_table(_run_results("mcsan", "tenfold_811"), models=["amh"])


def test_every_paper_row_has_a_declared_variant_or_a_reason():
    """Each row maps to a (model, variant) the model's card declares, or says why none runs it."""
    from workbench.models import get_card

    for r in RESULTS:
        if r.model is None:
            assert r.reason, f"{r.paper} {r.table} {r.paper_model!r}: no model and no reason"
            continue
        card = get_card(r.model)
        if r.variant:
            assert r.variant in card.variants, f"{r.paper} {r.paper_model!r}: {r.model} declares no variant {r.variant!r}"
        else:  # "" is the default configuration, which must not itself be a named variant
            assert not card.default_variant, f"{r.paper} {r.paper_model!r}: name {r.model}'s variant explicitly"


def test_an_amh_run_meets_only_the_rows_of_its_variant():
    c = comparison_table(_run_results("amh", "tenfold_811", scheme="iemocap7", variant="hops_3"))
    paper = c[c.source != "run"]
    assert paper.paper_model.tolist() == ["AMH-3"]
    c = comparison_table(_run_results("amh", "tenfold_811", scheme="iemocap7", variant="hops_7"))
    paper = c[c.source != "run"]
    # Table 2's AMH-7 repeats Table 1's AMH: listed once; AMH-ASR differs in text source; Sun's rerun
    assert sorted(zip(paper.source, paper.paper_model)) == [
        ("sun2021", "AMH [20]"), ("yoon2020", "AMH (ours)"), ("yoon2020", "AMH-ASR (ours)")]
    same = paper[paper.paper_model == "AMH (ours)"].iloc[0]
    assert "protocol" not in same.differs and "label scheme" not in same.differs
    assert "text source: oracle vs asr" in paper[paper.paper_model == "AMH-ASR (ours)"].iloc[0].differs


def test_pepino_variants_pair_with_their_own_rows_and_spread_over_seeds():
    res = _run_results("pepino_text", "session_script", variant="static_text", seeds=3, recipe="demo")
    c = comparison_table(res)
    assert set(c[c.source == "pepino2020"].paper_model) == {"Glove"}
    s = side_by_side(res)
    assert len(s) == 1
    row = s.iloc[0]
    assert row.paper_model == "Glove" and row.unit == "median ± IQR over seeds"
    # per-seed fold means are 0.52, 0.62, 0.72: median 0.62, IQR 0.67 - 0.57
    assert row.run_ua == pytest.approx(0.62) and row.run_spread == pytest.approx(0.10)
    assert "seeds: 3 vs 10" in row.differs and "training recipe: demo (CPU-sized) vs the paper's" in row.differs
    # the closest row: IEMOCAP (human text), not MSP-Podcast (ASR text, other corpus)
    assert row.paper_ua == pytest.approx(0.478)


def test_a_model_no_paper_reports_keeps_its_run_row():
    s = side_by_side(_run_results("pepino_late", "session_script", variant="scalar_weights"))
    assert s.iloc[0].model == "pepino_late" and pd.isna(s.iloc[0].paper)


def test_one_configuration_under_two_protocols_is_two_rows():
    """A config hash does not include the protocol: the same settings under two protocols are
    two configurations (before: side_by_side failed on the duplicate hash)."""
    res = pd.concat([_run_results("pepino_audio", p, seeds=2) for p in ("session_script", "loso_session")])
    s = side_by_side(res).set_index("protocol")
    assert sorted(s.index) == ["loso_session", "session_script"]
    assert s.loc["session_script", "paper_model"] == "Audio"
    assert s.loc["session_script", "unit"] == "median ± IQR over seeds"
    assert "protocol: loso_session vs session_script" in s.loc["loso_session", "differs"]


def _stored_run(spec, model_options_seen: bool = True) -> pd.Series:
    """An aggregated run row whose config is what a run of ``spec`` stores (crossval's config)."""
    from types import SimpleNamespace

    from workbench.training.build import build_config

    feats = {"audio": SimpleNamespace(dim=34, frame_seconds=0.01), "text": SimpleNamespace(dim=300, frame_seconds=None)}
    config = {"settings": spec.settings.to_dict(),
              "model_config": build_config(spec.model, spec.settings, spec.model_options, feats, 4),
              "features": {"text": {"extractor": "text_glove", "config": {"path": "glove.840B.300d.txt"}, "dim": 300}}}
    return pd.Series(dict(model=spec.model, variant=spec.settings.variant, corpus="iemocap", protocol=spec.protocol,
                          label_scheme=spec.settings.label_scheme, text_source="oracle",
                          train_preset=spec.settings.name, config_json=json.dumps(config)))


def test_differences_list_every_override_of_the_recipe_a_run_names():
    from workbench.training.recipes import get_recipe
    from workbench.training.spec import RunSpec

    paper = _row(paper_table(), paper="xu2019", paper_model="Proposed", text_source="oracle")
    # GloVe-300 on IEMOCAP under the paper recipe: the paper's setting
    assert differences(_stored_run(RunSpec.create("xu_alignment", "paper")), paper) == []
    # `--recipe paper --epochs 3 --model-options '{"hidden": 16}'` used to be the paper's setting too
    run = _stored_run(RunSpec.create("xu_alignment", "paper", epochs=3, model_options={"hidden": 16}))
    assert differences(run, paper) == ["epochs: 3 vs the paper recipe's 30",
                                       "model option hidden: 16 vs the model's default (the paper recipe sets none)"]
    recipe = get_recipe("xu_alignment", "paper").replace(batch_size=64, lr=5e-4)
    assert differences(_stored_run(RunSpec.create("xu_alignment", recipe)), paper) == [
        "batch_size: 64 vs the paper recipe's 32", "lr: 0.0005 vs the paper recipe's 0.001"]
    # a demo run: the CPU recipe is one difference, the user's overrides of it each another
    demo = differences(_stored_run(RunSpec.create("xu_alignment", "demo", epochs=3)), paper)
    assert demo == ["training recipe: demo (CPU-sized) vs the paper's", "epochs: 3 vs the demo recipe's 6"]
    # a variant's own config is its recipe's, not an override
    amh = _stored_run(RunSpec.create("amh", "paper", variant="hops_3", model_options={"hidden": 16}))
    assert [d for d in differences(amh, _row(paper_table(), paper="yoon2020", paper_model="AMH-3"))
            if d.startswith("model option")] == [
        "model option hidden: 16 vs the model's default (the paper recipe sets none)"]


def test_iqr_spreads_over_seeds_as_pepino_does():
    # 5 folds x 3 seeds; each seed's mean UA over folds is 0.52, 0.62, 0.72
    res = _run_results("pepino_text", "session_script", seeds=3)
    row = comparison_table(res, spread="iqr").query("source == 'run'").iloc[0]
    assert row.ua == pytest.approx(0.62) and row.ua_spread == pytest.approx(0.10)  # median, IQR of the seed means
    every_run = np.array([0.5 + 0.01 * f + 0.1 * s for f in range(5) for s in range(3)])
    q75, q25 = np.percentile(every_run, [75, 25])
    assert not math.isclose(row.ua_spread, q75 - q25)  # not the IQR over folds x seeds (0.17)
    assert row.n_runs == 15 and row.spread == "iqr"
    std = comparison_table(res).query("source == 'run'").iloc[0]
    assert std.ua == pytest.approx(every_run.mean()) and std.ua_spread == pytest.approx(every_run.std(ddof=1))
