"""The layer builder: the article's stack rebuilt exactly, invalid stacks refused by name, custom models saved."""
import json

import pytest
import torch

from dlplay.builder import ARTICLE_STACK, LayerSpec, StackError
from dlplay.checkpoint import ModelCard, load_model, save_model
from dlplay.models import build_model, summary
from dlplay.training.jobs.runner import MODEL_FILE, JobRunner
from dlplay.training.jobs.spec import DataRef, JobSpec, RunConfig


def test_the_article_stack_matches_the_article_model():
    custom = summary(build_model("custom", (3, 32, 32), 10, stack=ARTICLE_STACK), (3, 32, 32))
    article = summary(build_model("article-cifar10", (3, 32, 32), 10), (3, 32, 32))
    assert sum(r.params for r in custom) == sum(r.params for r in article) == 160_202
    assert [r.output_shape for r in custom if r.kind == "Conv2d"] == [(32, 30, 30), (64, 13, 13), (128, 4, 4)]


@pytest.mark.parametrize("stack, message", [
    ([LayerSpec("conv", 8)] + [LayerSpec("pool")] * 5, r"Layer 6 \(max-pool 2×2\) gets a 1×1 feature map"),
    ([LayerSpec("conv", 8), LayerSpec("pool"), LayerSpec("conv", 8), LayerSpec("pool"), LayerSpec("conv", 8),
      LayerSpec("pool"), LayerSpec("conv", 8)], r"Layer 7 \(conv 3×3, 8 filters \+ ReLU\) gets a 1×1 feature map"),
    ([LayerSpec("dense", 32), LayerSpec("conv", 8)], "comes after a dense layer"),
    ([LayerSpec("dropout", 100)], "from 0 to 99%"),
    ([LayerSpec("conv", 0)], "at least 1 filter"),
])
def test_invalid_stacks_are_refused_with_the_layer_named(stack, message):
    with pytest.raises(StackError, match=message):
        build_model("custom", (1, 28, 28), 10, stack=stack)


def test_batchnorm_adapts_and_an_empty_stack_is_a_linear_model():
    model = build_model("custom", (1, 28, 28), 10, stack=[LayerSpec("conv", 4), LayerSpec("batchnorm"),
                                                          LayerSpec("dense", 16), LayerSpec("batchnorm")])
    kinds = [type(m).__name__ for m in model]
    assert "BatchNorm2d" in kinds and "BatchNorm1d" in kinds
    assert model.eval()(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    linear = build_model("custom", (1, 28, 28), 10, stack=[])
    assert sum(p.numel() for p in linear.parameters()) == 784 * 10 + 10


def test_a_custom_model_saves_and_loads(tmp_path):
    stack = (LayerSpec("conv", 8), LayerSpec("pool"), LayerSpec("dense", 32), LayerSpec("dropout", 20))
    model = build_model("custom", (1, 28, 28), 10, stack=stack, seed=3)
    card = ModelCard("custom", tuple("0123456789"), (1, 28, 28), (0.1,), (0.3,), "mnist5k", None,
                     tuple((s.kind, s.size) for s in stack))
    loaded, loaded_card = load_model(save_model(tmp_path / "c.safetensors", model, card))
    assert loaded_card.stack == (("conv", 8), ("pool", 0), ("dense", 32), ("dropout", 20))
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(model.eval()(x), loaded(x))


def test_a_custom_run_trains_and_its_config_round_trips(mnist5k, tmp_path):
    config = RunConfig(model="custom", epochs=1, stack=(LayerSpec("conv", 8), LayerSpec("pool"),
                                                       LayerSpec("dense", 32)))
    assert RunConfig.from_plain(json.loads(json.dumps(config.to_plain()))) == config
    files = {}
    spec = JobSpec("0123456789ab", config, DataRef("mnist5k"), threads=torch.get_num_threads())
    JobRunner(spec, mnist5k, lambda event: None, files.__setitem__).run()
    (tmp_path / MODEL_FILE).write_bytes(files[MODEL_FILE])
    _, card = load_model(tmp_path / MODEL_FILE)
    assert card.test_accuracy > 0.8 and card.stack == (("conv", 8), ("pool", 0), ("dense", 32))
