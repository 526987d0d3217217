"""AMH specifics the registry-driven test does not cover: hop order and count, the hop
equations against a hand computation, and input errors."""

from __future__ import annotations

import pytest
import torch

from workbench.models import create_model


def _inputs(lengths: dict[str, list[int]], dims: dict[str, int], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, lens in lengths.items():
        t = max(lens)
        out[name] = torch.randn(len(lens), t, dims[name], generator=g)
        out[f"{name}_mask"] = torch.arange(t)[None, :] < torch.tensor(lens)[:, None]
    return out


DIMS = {"audio": 120, "text": 384, "video": 32}


def test_hop_order_and_count_follow_the_paper() -> None:
    model = create_model("amh", n_hops=8).eval()
    out = model(**_inputs({"audio": [20, 11], "text": [5, 3], "video": [4, 2]}, DIMS))
    # Table 2: V, A, T, V, A, T, ... with one map per hop over that modality's positions.
    expected = ["video", "audio", "text"] * 3
    assert list(out.attentions) == [f"hop{k}_{m}" for k, m in enumerate(expected[:8], start=1)]
    assert out.attentions["hop2_audio"].shape == (2, 20)
    assert out.attention_info["hop2_audio"].frame_seconds == {"frame": 0.01}
    assert out.attention_info["hop1_video"].frame_seconds["frame"] == pytest.approx(1 / 3)
    assert out.attention_info["hop3_text"].axes == ("batch", "word")
    assert out.embeddings.shape == (2, 200 + 200 + 128)


def test_two_modality_hopping_is_mha_order() -> None:
    model = create_model("amh_at", n_hops=3).eval()
    assert model.inputs == ("audio", "text")
    out = model(**_inputs({"audio": [20, 11], "text": [5, 3]}, DIMS))
    assert list(out.attentions) == ["hop1_text", "hop2_audio", "hop3_text"]
    assert out.embeddings.shape == (2, 400)


def test_hops_match_a_hand_computation_of_eqs_2_to_4() -> None:
    torch.manual_seed(0)
    model = create_model("amh", n_hops=3).eval()
    x = _inputs({"audio": [20, 13], "text": [6, 4], "video": [5, 3]}, DIMS)
    out = model(**x)
    for b in range(2):
        # Encode each row alone, unpadded, with the GRUs directly (no packing, no masks).
        h, last = {}, {}
        for m in ("audio", "text", "video"):
            n = int(x[f"{m}_mask"][b].sum())
            seq, _ = model.encoders[m](x[m][b : b + 1, :n])
            h[m], last[m] = seq[0], seq[0, -1]

        def hop(k: int, context: torch.Tensor, target: str) -> tuple[torch.Tensor, torch.Tensor]:
            lin = model.hops[k].proj
            a = torch.softmax(h[target] @ (lin.weight @ context + lin.bias), dim=0)
            return a, a @ h[target]

        a1, v1 = hop(0, torch.cat([last["audio"], last["text"]]), "video")  # eq. 2
        a2, a_1 = hop(1, torch.cat([last["text"], v1]), "audio")  # eq. 3
        a3, t_1 = hop(2, torch.cat([a_1, v1]), "text")  # eq. 4
        for got, want in ((out.attentions["hop1_video"], a1), (out.attentions["hop2_audio"], a2), (out.attentions["hop3_text"], a3)):
            n = want.shape[0]
            torch.testing.assert_close(got[b, :n], want, rtol=1e-4, atol=1e-5)
            assert got[b, n:].abs().sum() == 0  # padding gets no weight
        torch.testing.assert_close(out.embeddings[b], torch.cat([a_1, t_1, v1]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x: x.pop("video"), "missing input 'video'"),
        (lambda x: x.update(text=torch.zeros(2, 6, 300)), "'text' has feature size 300"),
        (lambda x: x["audio_mask"].__setitem__(1, False), "'audio' is all padding"),
    ],
)
def test_bad_input_names_model_and_input(change, message: str) -> None:
    model = create_model("amh", n_hops=1)
    x = _inputs({"audio": [8, 5], "text": [6, 4], "video": [3, 2]}, DIMS)
    change(x)
    with pytest.raises(ValueError, match="'amh'") as err:
        model(**x)
    assert message in str(err.value)


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="hop_order"):
        create_model("amh", hop_order=("audio", "speech"))
    with pytest.raises(ValueError, match="n_hops"):
        create_model("amh", n_hops=0)
