"""Every input is costed before it is read: the limits come from the environment, and a tiny model file that
describes a giant model is refused from its header, without the memory that building the model would take."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

from dlplay.checkpoint import ModelCard, ModelFileError, card_metadata, load_model_bytes, model_cost
from dlplay.limits import Limits, SettingError
from dlplay.models import build_model

REPO = Path(__file__).resolve().parents[2]


def test_limits_come_from_the_environment_and_bad_values_get_a_sentence():
    assert Limits.from_env({}) == Limits()
    raised = Limits.from_env({"DLPLAY_MAX_CSV_ROWS": "20000", "DLPLAY_MAX_IMAGE_MEGAPIXELS": "100"})
    assert (raised.csv_rows, raised.image_megapixels) == (20_000, 100.0)
    with pytest.raises(SettingError, match="DLPLAY_MAX_MODEL_PARAMETERS='lots' is not a whole number"):
        Limits.from_env({"DLPLAY_MAX_MODEL_PARAMETERS": "lots"})
    with pytest.raises(SettingError, match="DLPLAY_MAX_KERNEL_CHARS must be at least 1"):
        Limits.from_env({"DLPLAY_MAX_KERNEL_CHARS": "0"})


def test_the_cost_of_a_model_is_counted_on_the_meta_device_as_it_really_is():
    model = build_model("small-cnn", (1, 28, 28), 10)
    parameters, flowing = model_cost(build_model("small-cnn", (1, 28, 28), 10).to("meta"), (1, 28, 28))
    assert parameters == sum(p.numel() for p in model.parameters())
    outputs = []  # the oracle: the same count on real tensors
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out.numel()))
             for m in model.modules() if not list(m.children())]
    model.eval()(torch.zeros(1, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    assert flowing == sum(outputs)


def giant(architecture: str, input_shape, stack=()) -> bytes:
    """A few hundred bytes: one tiny tensor and metadata that describes a big model."""
    card = ModelCard(architecture, ("a", "b"), input_shape, (0.5,) * input_shape[0], (0.5,) * input_shape[0],
                     stack=stack)
    return save({"x": torch.zeros(1)}, metadata=card_metadata(card))


def test_a_tiny_file_describing_a_giant_model_is_refused_by_its_parameters():
    data = giant("article-150", (3, 20_000, 20_000))
    assert len(data) < 500
    with pytest.raises(ModelFileError, match=r"^giant.safetensors describes a model of [\d,]+ parameters; "
                                             r"the limit is 50,000,000$"):
        load_model_bytes(data, "giant.safetensors")


def test_a_small_model_on_huge_images_is_refused_by_what_one_image_makes_flow():
    data = giant("mobilenet-v3-small", (3, 3_000, 3_000))  # 1.5 M parameters, global pooling at the end
    with pytest.raises(ModelFileError, match=r"through which one image makes [\d,]+ values; the limit is 25,000,000"):
        load_model_bytes(data, "wide.safetensors")


def test_a_file_without_the_weights_it_describes_is_refused_before_building():
    data = giant("small-cnn", (1, 28, 28))
    with pytest.raises(ModelFileError, match="weights do not fit small-cnn: missing .*unexpected x"):
        load_model_bytes(data, "empty.safetensors")


@pytest.mark.slow  # a fresh interpreter measures its peak memory
def test_refusing_the_giant_costs_no_memory():
    """In a fresh process: peak memory before and after the refusal (building the model first cost +877 MB)."""
    code = ("import resource, torch, sys\n"
            "sys.path.insert(0, 'tests/unit')\n"
            "from test_limits import giant\n"
            "from dlplay.checkpoint import ModelFileError, load_model_bytes\n"
            "data = giant('article-150', (3, 4_000, 4_000))\n"
            "try:\n"
            "    load_model_bytes(data, 'g')\n"
            "except ModelFileError:\n"
            "    pass\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n"
            "    load_model_bytes(giant('article-150', (3, 6_000, 6_000)), 'g')\n"
            "except ModelFileError:\n"
            "    pass\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"})
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) < 50 * 1024  # kilobytes: under 50 MB (the model would take ~36 GB)
