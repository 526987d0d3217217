"""ssl_baseline / ssl_fusion: the SUPERB-style downstream model checked against a hand
computation, its errors, and one training path from a tiny speech checkpoint to a result row."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench import paths
from workbench.models import create_model, get_card


def test_forward_is_the_weighted_sum_projection_mean_and_linear_classifier() -> None:
    torch.manual_seed(0)
    m = create_model("ssl_baseline", audio_dim=3 * 5, n_layers=3, proj_dim=4, n_classes=2).eval()
    with torch.no_grad():
        m.layer_logits.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = torch.randn(2, 6, 15)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    with torch.no_grad():
        out = m(audio=x, audio_mask=mask)
    # independent: numpy, row by row, real frames only
    w = np.exp([0.5, -1.0, 2.0])
    w /= w.sum()
    W, b = m.projection.weight.detach().numpy(), m.projection.bias.detach().numpy()
    C, c = m.classifier.weight.detach().numpy(), m.classifier.bias.detach().numpy()
    for r, n in enumerate((6, 4)):
        frames = x[r, :n].numpy().reshape(n, 3, 5)
        summed = (frames * w[None, :, None]).sum(1)
        pooled = (summed @ W.T + b).mean(0)
        np.testing.assert_allclose(out.embeddings[r].numpy(), pooled, atol=1e-5)
        np.testing.assert_allclose(out.logits[r].numpy(), pooled @ C.T + c, atol=1e-5)
    np.testing.assert_allclose(out.attentions["layer_weights"].numpy(), np.stack([w, w]), atol=1e-6)
    assert set(out.attentions) == {"layer_weights"}  # mean pooling has no frame weights


def test_attentive_pooling_and_the_fusion_expose_their_weights() -> None:
    torch.manual_seed(1)
    m = create_model("ssl_fusion", audio_dim=8, n_layers=2, proj_dim=3, text_dim=5, pooling="attentive",
                     text_pooling="attentive").eval()
    audio, text = torch.randn(2, 7, 8), torch.randn(2, 4, 5)
    amask = torch.tensor([[True] * 7, [True] * 3 + [False] * 4])
    tmask = torch.tensor([[True] * 4, [True] * 2 + [False] * 2])
    with torch.no_grad():
        out = m(audio=audio, audio_mask=amask, text=text, text_mask=tmask)
    assert set(out.attentions) == {"layer_weights", "frame_pool", "word_pool"}
    fp, wp = out.attentions["frame_pool"], out.attentions["word_pool"]
    assert torch.allclose(fp.sum(1), torch.ones(2)) and (fp[1, 3:] == 0).all()
    assert torch.allclose(wp.sum(1), torch.ones(2)) and (wp[1, 2:] == 0).all()
    # the embedding is [pooled audio projection, attention-pooled words]
    words = (wp[:, :, None] * text).sum(1)
    torch.testing.assert_close(out.embeddings[:, 3:], words, atol=1e-5, rtol=1e-5)
    assert out.embeddings.shape == (2, 3 + 5)
    assert m.classifier[0].out_features == 256  # the fusion's MLP by default


def test_feature_size_must_split_into_the_declared_layers() -> None:
    with pytest.raises(ValueError, match="ssl_baseline.*audio_dim 100 is not a multiple of n_layers 13.*n_layers"):
        create_model("ssl_baseline", audio_dim=100)
    with pytest.raises(ValueError, match="ssl_fusion.*pooling"):
        create_model("ssl_fusion", text_pooling="max")
    with pytest.raises(ValueError, match="ssl_baseline.*fusion"):
        create_model("ssl_baseline", fusion=True)


def test_training_takes_the_layer_count_from_the_features() -> None:
    from types import SimpleNamespace

    from workbench.training.build import build_model
    from workbench.training.recipes import get_recipe

    feats = {"audio": SimpleNamespace(dim=4 * 24, frame_seconds=0.04, n_layers=4),
             "text": SimpleNamespace(dim=12, frame_seconds=None)}
    for model in ("ssl_baseline", "ssl_fusion"):
        net, config = build_model(model, get_recipe(model, "demo"), None, feats, n_classes=4)
        assert (config["audio_dim"], config["n_layers"], config["frame_seconds"]) == (96, 4, 0.04)
        assert net.projection.in_features == 24 and net.layer_logits.shape == (4,)
    # features without a layer count (any other extractor) are one block
    _, config = build_model("ssl_baseline", get_recipe("ssl_baseline", "demo"), None,
                            {"audio": SimpleNamespace(dim=17, frame_seconds=0.01)}, n_classes=4)
    assert config["n_layers"] == 1


def test_paper_recipe_is_superbs_emotion_recipe() -> None:
    recipe = get_card("ssl_baseline").recipes["paper"]
    assert (recipe["optimizer"], recipe["lr"], recipe["batch_size"], recipe["grad_clip"]) == ("adam", 1e-4, 32, 1.0)
    assert (recipe["protocol"], recipe["label_scheme"]) == ("loso_session", "iemocap4")
    assert "SUPERB" in recipe["source"] and "ours" in recipe["notes"]
    assert get_card("ssl_fusion").inputs == {"audio": "ssl_layers", "text": "text_contextual"}


def test_smoke_preset_trains_one_fold_from_a_tiny_speech_checkpoint(tmp_path) -> None:
    """The whole path: --speech-encoder -> ssl_layers features in the cache -> ssl_baseline ->
    a result row. Needs the smoke corpus (``make corpus-smoke``), as the other corpus runs."""
    from workbench.features.cache import FeatureCache
    from workbench.testing.ssl_checkpoints import tiny_speech_model
    from workbench.training.crossval import run_crossval
    from workbench.training.spec import CorpusOptions, RunSpec

    if not (paths.data_dir() / "synthetic-smoke-seed0" / "IEMOCAP_full_release" / "SYNTHETIC_README.txt").is_file():
        pytest.skip("smoke corpus not generated (make corpus-smoke)")
    ckpt = tiny_speech_model(tmp_path / "w2v")
    spec = RunSpec.create("ssl_baseline", "smoke", folds=[0], device="cpu", epochs=1, speech_encoder=str(ckpt))
    audio = spec.settings.features["audio"]
    assert audio.extractor == "ssl_layers" and audio.config["checkpoint"] == str(ckpt.resolve())
    cache = FeatureCache(tmp_path / "cache")
    rows = run_crossval(spec, CorpusOptions("synthetic", size="smoke"), cache=cache, runs_root=tmp_path / "runs",
                        progress=False)
    assert len(rows) == 1 and 0.0 <= float(rows["ua"].iloc[0]) <= 1.0
    stores = list((tmp_path / "cache" / "ssl_layers").iterdir())
    assert len(stores) == 1 and (stores[0] / "index.json").is_file()
    # the run recorded the model it built from the features: 3 hidden states of 32 at 20 ms, pooled 2x
    # by the CPU recipe
    import json

    config = json.loads(next((tmp_path / "runs").rglob("config.json")).read_text())
    model_config = config.get("model_config", config)
    assert (model_config["audio_dim"], model_config["n_layers"]) == (96, 3)
    assert model_config["frame_seconds"] == pytest.approx(0.04)
