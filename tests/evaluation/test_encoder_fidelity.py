"""The paper comparison and the fidelity table with the papers' own text encoders (BERT, GloVe)."""

from __future__ import annotations

import json

import pandas as pd

from workbench.evaluation.fidelity import fidelity_table, render_markdown
from workbench.evaluation.papers import comparison_table, differences, is_bert_base_uncased, paper_table


def _paper(paper: str, paper_model: str, **more) -> pd.Series:
    t = paper_table()
    sel = t[(t.paper == paper) & (t.paper_model == paper_model)]
    for k, v in more.items():
        sel = sel[sel[k] == v]
    assert len(sel) >= 1
    return sel.iloc[0]


def _run(text: dict, corpus: str = "iemocap", protocol: str = "session_script", scheme: str = "iemocap4") -> pd.Series:
    return pd.Series(dict(corpus=corpus, protocol=protocol, label_scheme=scheme, text_source="oracle", variant="",
                          train_preset="paper", config_json=json.dumps({"features": {"text": text}})))


def _bert_base_dir(path, lower: bool = True, **config):
    """A directory with BERT-base's config and tokenizer settings (its weights a stub: only hashed)."""
    path.mkdir(parents=True)
    cfg = {**dict(model_type="bert", hidden_size=768, num_hidden_layers=12, vocab_size=30522), **config}
    (path / "config.json").write_text(json.dumps(cfg))
    (path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": lower}))
    (path / "model.safetensors").write_bytes(b"stub")
    return str(path)


BERT_ROW = ("pepino2020", "BERT")


def test_bert_base_uncased_by_name_or_by_config(tmp_path, monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing cached: names decide
    assert is_bert_base_uncased("bert-base-uncased") and is_bert_base_uncased("google-bert/bert-base-uncased")
    assert not is_bert_base_uncased("bert-base-cased") and not is_bert_base_uncased("roberta-base")
    assert is_bert_base_uncased(_bert_base_dir(tmp_path / "my-encoder"))
    assert not is_bert_base_uncased(_bert_base_dir(tmp_path / "cased", lower=False))
    assert not is_bert_base_uncased(_bert_base_dir(tmp_path / "large", hidden_size=1024))
    assert not is_bert_base_uncased(_bert_base_dir(tmp_path / "six", num_hidden_layers=6))
    # a directory's config outranks its name: a tiny BERT called bert-base-uncased is not it
    from workbench.testing.hf_checkpoints import tiny_bert

    assert not is_bert_base_uncased(str(tiny_bert(tmp_path / "bert-base-uncased")))


def test_a_bert_run_meets_pepinos_bert_row_without_the_minilm_difference(tmp_path):
    paper = _paper(*BERT_ROW, corpus="IEMOCAP")
    minilm = differences(_run({"extractor": "text_contextual", "config": {}, "dim": 384}), paper)
    assert minilm == ["text encoder: MiniLM-L6 contextual word embeddings stand in for BERT-base (sum of the last "
                      "4 layers)"]
    bert = {"extractor": "text_contextual", "config": {"checkpoint": "bert-base-uncased"}, "dim": 768}
    assert differences(_run(bert), paper) == []
    local = {"extractor": "text_contextual", "config": {"checkpoint": _bert_base_dir(tmp_path / "b")}, "dim": 768}
    assert differences(_run(local), paper) == []
    two = {"extractor": "text_contextual", "config": {"checkpoint": "bert-base-uncased", "layers": 2}, "dim": 768}
    assert differences(_run(two), paper) == ["text encoder: bert-base-uncased contextual word embeddings (sum of "
                                             "the last 2 layers) stand in for BERT-base (sum of the last 4 layers)"]
    static = {"extractor": "text_static", "config": {"checkpoint": "bert-base-uncased"}, "dim": 768}
    assert differences(_run(static), paper)[0].startswith("text encoder: bert-base-uncased input-embedding table")
    # BERT is not GloVe: the Glove row of the same paper still differs
    glove_row = _paper("pepino2020", "Glove", corpus="IEMOCAP")
    assert differences(_run(bert), glove_row) == ["text encoder: bert-base-uncased contextual word embeddings (sum "
                                                  "of the last 4 layers) stand in for GloVe"]


def test_a_glove_file_of_the_papers_size_meets_the_glove_rows():
    xu = _paper("xu2019", "Proposed", text_source="oracle")
    run = lambda dim: _run({"extractor": "text_glove", "config": {"path": "/d/glove.840B.300d.txt"}, "dim": dim},
                           protocol="loso_session")  # noqa: E731
    assert differences(run(300), xu) == []
    assert differences(run(100), xu) == ["text encoder: GloVe vectors from glove.840B.300d.txt (100-d) stand in "
                                         "for GloVe-300"]
    krishna = _paper("krishna2020", "CMA+Raw waveform (proposed)")  # "GloVe", no size stated
    assert differences(run(100), krishna) == []


def test_comparison_table_drops_the_text_encoder_difference_for_a_bert_run():
    config = json.dumps({"features": {"text": {"extractor": "text_contextual",
                                               "config": {"checkpoint": "bert-base-uncased"}, "dim": 768}}})
    res = pd.DataFrame([dict(model="pepino_text", variant="", config_hash="c0ffee", corpus="iemocap",
                             protocol="session_script", label_scheme="iemocap4", text_source="oracle", fold=f, seed=0,
                             wa=0.6, ua=0.5, weighted_f1=0.5, av_auc=0.8, train_preset="paper", config_json=config)
                        for f in range(3)])
    c = comparison_table(res)
    pep = c[(c.source == "pepino2020") & (c.corpus == "IEMOCAP")]
    assert len(pep) == 1 and "text encoder" not in pep.iloc[0].differs


def test_fidelity_table_with_the_papers_encoders(tmp_path):
    default = fidelity_table()
    iemocap_bert = ["BERT", "EF-PT", "LF-PT"]
    bert_rows = default[(default.paper == "pepino2020") & default.system.isin(iemocap_bert) & (default.corpus == "IEMOCAP")]
    assert bert_rows.substitutions.str.contains("MiniLM-L6 contextual.*exact with `--text-encoder "
                                                "bert-base-uncased`").all()
    t = fidelity_table(text_encoder="bert-base-uncased")
    bert_rows = t[(t.paper == "pepino2020") & t.system.isin(iemocap_bert) & (t.corpus == "IEMOCAP")]
    assert (bert_rows.substitutions == "").all() and bert_rows.runs_as.str.contains("--text-encoder").all()
    xu = t[(t.paper == "xu2019") & (t.system == "Proposed")]
    assert xu.substitutions.str.startswith("bert-base-uncased input-embedding table").all()

    glove = tmp_path / "glove.840B.300d.txt"
    glove.write_text("the " + " ".join(["0.5"] * 300) + "\n")
    g = fidelity_table(text_encoder=str(glove))
    for paper in ("xu2019", "sun2021", "yoon2020", "krishna2020"):
        rows = g[(g.paper == paper) & (g.model != "") & g.modalities.str.contains("T")]
        assert len(rows) and not rows.substitutions.str.contains("GloVe vectors|MiniLM").any(), paper
        assert not rows.deviations.str.contains("MiniLM").any(), paper
        assert rows.runs_as.str.contains(f"--text-encoder {glove}").all()
    pepino_bert = g[(g.paper == "pepino2020") & (g.system == "BERT")]
    assert pepino_bert.substitutions.str.contains("GloVe vectors from glove.840B.300d.txt .300-d. for BERT-base").all()


def test_generated_page_names_the_exact_encoders():
    text = render_markdown()
    assert "exact with `--text-encoder bert-base-uncased`" in text
    assert "exact with `--text-encoder <a 300-d GloVe .txt file>`" in text
