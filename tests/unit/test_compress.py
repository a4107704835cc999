"""Magnitude pruning: the requested share of weights is zero, exactly the smallest ones across layers, the rest
untouched; a pruned model saves, loads and still classifies."""
import copy

import pytest
import torch
from torch import nn

from dlplay.checkpoint import load_model_bytes, model_bytes
from dlplay.classify import load_bundled_model
from dlplay.compress import prunable, prune_model, pruning_sweep, weight_sparsity
from dlplay.data import load_dataset
from dlplay.device import pick_device
from dlplay.evaluate import evaluate


@pytest.fixture(scope="module")
def bundled():
    return load_bundled_model()


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9])
def test_the_smallest_weights_across_layers_become_zero_and_the_rest_stay(bundled, sparsity):
    model, _ = bundled
    before = copy.deepcopy(model.state_dict())
    pruned = prune_model(model, sparsity)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the original is untouched
    old = torch.cat([w.detach().flatten() for w in (getattr(m, n) for m, n in prunable(model))])
    new = torch.cat([w.detach().flatten() for w in (getattr(m, n) for m, n in prunable(pruned))])
    assert weight_sparsity(pruned) == pytest.approx(sparsity, abs=1 / old.numel())
    kept = new != 0
    assert torch.equal(new[kept], old[kept])  # survivors keep their values
    if sparsity:  # the oracle: the k-th smallest |w| over all layers is the line between dropped and kept
        k = round(sparsity * old.numel())
        line = old.abs().kthvalue(k).values
        assert (old.abs()[~kept] <= line).all() and (old.abs()[kept] >= line).all()
    assert not any(hasattr(m, "weight_mask") or hasattr(m, "weight_orig") for m in pruned.modules())  # permanent


def test_a_pruned_model_saves_loads_and_classifies(bundled):
    model, card = bundled
    digits = load_dataset("mnist5k")
    device = pick_device("cpu")
    pruned = prune_model(model, 0.5)
    reloaded, _ = load_model_bytes(model_bytes(pruned, card), "pruned.safetensors")
    assert weight_sparsity(reloaded) == pytest.approx(0.5, abs=1e-3)
    original = evaluate(model, digits.test, device).accuracy
    assert evaluate(reloaded, digits.test, device).accuracy > original - 0.02  # half the weights, little lost


def test_the_sweep_measures_each_sparsity(bundled):
    model, card = bundled
    digits = load_dataset("mnist5k")
    results = pruning_sweep(model, card, digits.test, pick_device("cpu"), [0.9, 0.0, 0.5])
    assert [r.sparsity for r in results] == [0.0, 0.5, 0.9]
    assert results[0].accuracy == evaluate(model, digits.test, pick_device("cpu")).accuracy
    assert results[0].nonzero_parameters > results[1].nonzero_parameters > results[2].nonzero_parameters
    assert results[0].gzip_bytes > results[1].gzip_bytes > results[2].gzip_bytes  # zeros compress


@pytest.mark.parametrize("sparsity", [1.0, -0.1])
def test_impossible_sparsities_are_refused(sparsity):
    with pytest.raises(ValueError, match="sparsity must be"):
        prune_model(nn.Sequential(nn.Linear(2, 2)), sparsity)
