"""Registry-driven model tests: every registered name gets every check with no new code.

A model declares ``inputs`` (what it reads) and keeps its config in ``model.config``;
``workbench.testing.model_inputs`` builds matching padded batches. Each model is tested at the
size its card declares for tests (``card.smoke``), dropout off; every variant a model's card
declares (``workbench.models.card``) is built and run too.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from workbench.models import ModelOutput, create_model, get_card, list_models
from workbench.testing.model_inputs import SEQUENCE_INPUTS, batch_for_model, pad_more, with_host_lengths

MODELS = list_models()
VARIANTS = [(m, v) for m in MODELS for v in get_card(m).variants]
STEPS = 30  # overfitting budget; the loss bound is 0.2 (chance is ln 4 = 1.39)

def smoke_config(name: str, variant: str | None = None) -> dict:
    """The model's own test size (``card.smoke``, plus the variant's overrides) with every
    dropout off, so the overfitting checks see a deterministic model."""
    card = get_card(name)
    config = {**card.smoke, **(card.variant(variant).config if variant else {})}
    fields = dataclasses.fields(type(create_model(name, **config).config))
    return {**config, **{f.name: 0.0 for f in fields if f.name.endswith("dropout")}}


def small(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, **smoke_config(name))


def small_variant(name: str, variant: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, **smoke_config(name, variant))


def model_inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items()}


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_shapes(name: str) -> None:
    paper = create_model(name)
    n_params = sum(p.numel() for p in paper.parameters())
    print(f"{name}: {n_params} parameters at paper defaults")
    assert n_params > 0

    model = small(name).train()
    batch = batch_for_model(model, batch=3, seed=0)
    out = model(**batch)
    n_classes = model.config.n_classes
    assert out.logits.shape == (3, n_classes)
    assert torch.isfinite(out.logits).all()
    if out.embeddings is not None:
        assert out.embeddings.shape[0] == 3 and torch.isfinite(out.embeddings).all()
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2])).backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in params if p.grad is None]
    assert not missing, f"{name}: parameters without gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for _, p in params)


@pytest.mark.parametrize("name, variant", VARIANTS)
def test_every_variant_runs_forward_and_backward(name: str, variant: str) -> None:
    model = small_variant(name, variant).train()
    batch = batch_for_model(model, batch=3, seed=0)
    out = model(**batch)
    assert isinstance(out, ModelOutput) and out.logits.shape == (3, model.config.n_classes)
    assert torch.isfinite(out.logits).all()
    # a variant keeps its model's attention maps (maybe fewer), each documented
    with torch.no_grad():
        base = small(name).eval()(**batch_for_model(small(name), batch=3, seed=0))
    assert bool(out.attentions) == bool(base.attentions), f"{name}/{variant}: {sorted(out.attentions)}"
    assert set(out.attention_info) == set(out.attentions)
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2])).backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in params if p.grad is None]
    assert not missing, f"{name}/{variant}: parameters without gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for _, p in params)


@pytest.mark.parametrize("name", MODELS)
def test_padding_never_changes_output(name: str) -> None:
    model = small(name).eval()
    batch = batch_for_model(model, batch=3, seed=1)
    with torch.no_grad():
        ref = model(**batch)
        padded = model(**pad_more(batch, extra=13))
    torch.testing.assert_close(padded.logits, ref.logits, atol=1e-5, rtol=1e-4)
    if ref.embeddings is not None:
        torch.testing.assert_close(padded.embeddings, ref.embeddings, atol=1e-5, rtol=1e-4)
    assert set(padded.attentions) == set(ref.attentions)
    for key, att in ref.attentions.items():
        big = padded.attentions[key]
        region = tuple(slice(0, n) for n in att.shape)
        torch.testing.assert_close(big[region], att, atol=1e-5, rtol=1e-4, msg=f"{name}: {key}")
        # whatever lies beyond the original extent (added padding) has exactly no weight
        assert big.abs().sum() == pytest.approx(big[region].abs().sum().item(), abs=1e-4), f"{name}: {key}"


@pytest.mark.parametrize("name", MODELS)
def test_attention_maps_documented_and_normalised(name: str) -> None:
    model = small(name).eval()
    batch = batch_for_model(model, batch=3, seed=2)
    with torch.no_grad():
        out = model(**batch)
    assert set(out.attention_info) == set(out.attentions), f"{name}: every map needs an AttentionInfo"
    for key, att in out.attentions.items():
        info = out.attention_info[key]
        assert len(info.axes) == att.dim() and info.axes[0] == "batch", f"{name}: {key} axes {info.axes}"
        assert set(info.frame_seconds) <= set(info.axes) and all(s > 0 for s in info.frame_seconds.values())
        assert (att >= 0).all()
        rows = att.sum(-1)
        ones = (rows - 1).abs() < 1e-4
        assert (ones | (rows.abs() < 1e-6)).all(), f"{name}: {key} rows must sum to 1 (real) or 0 (padding)"
        assert ones.reshape(len(ones), -1).any(dim=1).all(), f"{name}: {key} has a batch row with no normalised attention"


@pytest.mark.parametrize("name", MODELS)
def test_batch_of_one_matches_batched(name: str) -> None:
    model = small(name).eval()
    batch = batch_for_model(model, batch=3, seed=3)
    # row 1 alone, cut to its own length: no padding at all
    one = {}
    for k, v in batch.items():
        one[k] = v[1:2]
    for k in SEQUENCE_INPUTS:
        if k in one:
            n = int(one[f"{k}_mask"].sum())
            one[k], one[f"{k}_mask"] = one[k][:, :n], one[f"{k}_mask"][:, :n]
            if k == "text" and "word_spans" in one:
                one["word_spans"] = one["word_spans"][:, :n]
    with torch.no_grad():
        full, single = model(**batch), model(**one)
    assert single.logits.shape == (1, model.config.n_classes)
    torch.testing.assert_close(single.logits, full.logits[1:2], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_host_lengths_give_the_same_outputs(name: str) -> None:
    """The collate's CPU lengths replace reading the mask; outputs and maps stay exactly equal."""
    model = small(name).eval()
    batch = batch_for_model(model, batch=5, seed=6)
    with torch.no_grad():
        plain, hosted = model(**batch), model(**with_host_lengths(batch))
    torch.testing.assert_close(hosted.logits, plain.logits, atol=0, rtol=0)
    assert sorted(hosted.attentions) == sorted(plain.attentions)
    for key in plain.attentions:
        torch.testing.assert_close(hosted.attentions[key], plain.attentions[key], atol=0, rtol=0)


@pytest.mark.parametrize("name", MODELS)
def test_training_step_reads_no_device_value_on_the_host(name: str) -> None:
    """With host lengths, forward and backward never read a device tensor's value (no
    ``.item()``, ``bool()``, ``.cpu()``), so on a GPU the CPU queues kernels without waiting.
    The meta device holds shapes and no data, so any such read raises there."""
    model = small(name).train().to("meta")
    batch = with_host_lengths(batch_for_model(model, batch=4, seed=7))
    meta = {k: (v if k.endswith("_lengths") else v.to("meta")) for k, v in batch.items()}
    out = model(**meta)
    F.cross_entropy(out.logits, torch.zeros(4, dtype=torch.long, device="meta")).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    # Without them the model reads the mask's lengths back, which the meta device refuses:
    # the check above can fail.
    if _uses_rnn(model):
        with pytest.raises((RuntimeError, NotImplementedError)):
            model(**{k: v for k, v in meta.items() if not k.endswith("_lengths")})


def _uses_rnn(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.RNNBase) for m in model.modules())


@pytest.mark.parametrize("name", MODELS)
def test_bad_input_names_model_and_input(name: str) -> None:
    with pytest.raises(ValueError, match=f"(?s){name}.*no_such_field"):
        create_model(name, no_such_field=1)
    model = small(name).eval()
    batch = batch_for_model(model, batch=2, seed=4)
    first = next(k for k in SEQUENCE_INPUTS if k in batch)

    missing = {k: v for k, v in batch.items() if k not in (first, f"{first}_mask")}
    with pytest.raises(ValueError, match=f"(?s){name}.*{first}"):
        model(**missing)

    feature_inputs = [k for k in SEQUENCE_INPUTS if k in batch and batch[k].dim() == 3]
    if feature_inputs:
        k = feature_inputs[0]
        wrong = dict(batch, **{k: torch.cat([batch[k], batch[k][..., :1]], dim=-1)})
        with pytest.raises(ValueError, match=f"(?s){name}.*{k}"):
            model(**wrong)

    empty_mask = batch[f"{first}_mask"].clone()
    empty_mask[0] = False
    try:
        out = model(**dict(batch, **{f"{first}_mask": empty_mask}))
    except ValueError as e:
        assert name in str(e) and first in str(e)
    else:  # defined instead of rejected: must at least be finite
        assert torch.isfinite(out.logits).all()


@pytest.mark.parametrize("name", MODELS)
def test_overfits_small_fixed_batch(name: str) -> None:
    torch.manual_seed(0)
    model = small(name).train()
    labels = torch.arange(16) % 4
    # short sequences keep the 2-core CI fast; the class pattern makes the labels learnable
    lengths = {"audio": (12, 24), "text": (3, 6), "video": (4, 8), "waveform": (2000, 4000)}
    batch = batch_for_model(model, batch=16, seed=5, labels=labels, class_signal=1.0, lengths=lengths)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(STEPS):
        opt.zero_grad()
        loss = F.cross_entropy(model(**batch).logits, labels)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    model.eval()
    with torch.no_grad():
        final = F.cross_entropy(model(**batch).logits, labels).item()
    assert final < 0.2, f"{name}: loss {first:.3f} -> {final:.3f} after {STEPS} steps"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", MODELS)
def test_overfits_on_cuda_under_the_trainers_autocast(name: str) -> None:
    """The GPU path: bf16 autocast (fp16 where bf16 is missing) as workbench.training.trainer uses it."""
    from workbench.training.trainer import _autocast

    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = small(name).to(dev).train()
    labels = torch.arange(16, device=dev) % 4
    lengths = {"audio": (12, 24), "text": (3, 6), "video": (4, 8), "waveform": (2000, 4000)}
    batch = {k: v.to(dev) for k, v in batch_for_model(model, batch=16, seed=5, labels=labels.cpu(), class_signal=1.0,
                                                       lengths=lengths).items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(STEPS * 2):  # bf16 rounding slows the descent a little
        opt.zero_grad()
        with _autocast(dev):
            out = model(**batch)
        F.cross_entropy(out.logits.float(), labels).backward()
        opt.step()
    model.eval()
    with torch.no_grad(), _autocast(dev):
        out = model(**batch)
    final = F.cross_entropy(out.logits.float(), labels).item()
    assert final < 0.2, f"{name} on CUDA: loss {final:.3f} after {STEPS * 2} steps"
    for key, att in out.attentions.items():
        assert torch.isfinite(att.float()).all(), f"{name}: attention {key} is not finite under autocast"

