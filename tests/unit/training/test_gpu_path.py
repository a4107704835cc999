"""What the Trainer does for a GPU, checked where no GPU is needed: restored optimizer state follows its parameters
to the device they train on (the 0-d step counter of a fused AdamW included, pytorch#124133), float16's gradient
scaler is part of the checkpoint, and the last-good guard, now read without stalling the device, still goes back
to the weights from before the step that blew up. Nothing here assumes the machine has no GPU."""
import json

import pytest
import torch
from torch import nn

from dlplay.augment import Augmentation
from dlplay.data import ImageSet
from dlplay.device import DeviceInfo
from dlplay.layers import Dropout
from dlplay.models import build_model
from dlplay.training.trainer import OPTIMIZERS, Trainer, build_optimizer

META = DeviceInfo(torch.device("meta"), "meta", None, True)  # a second device on any machine, for placement alone


@pytest.fixture
def digits(mnist5k):
    return ImageSet(mnist5k.train.images[:192], mnist5k.train.labels[:192])


@pytest.fixture
def keep_parameters_when_moved():
    """Module.to keeps a parameter's object when moving CPU <-> GPU; between the CPU and `meta` only with this."""
    before = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)
    yield
    torch.__future__.set_swap_module_params_on_conversion(before)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_restored_optimizer_state_follows_the_parameters_to_their_device(digits, cpu, name, keep_parameters_when_moved):
    first = Trainer(model := build_model("small-cnn", (1, 28, 28), 10), build_optimizer(name, model.parameters(), 1e-3),
                    digits, cpu, batch_size=64)
    first.fit()
    tensors, plain = first.state()
    # As in a resumed worker: the state is loaded while the model is still on the CPU, then fit() moves it.
    model = build_model("small-cnn", (1, 28, 28), 10)
    resumed = Trainer(model, build_optimizer(name, model.parameters(), 1e-3), digits, META, batch_size=64)
    resumed.load_state(tensors, json.loads(json.dumps(plain)))
    resumed.place()
    # The oracle: torch's own load_state_dict into an optimizer whose parameters are on the device already (the
    # torchrun path, which moves the model first and was always right).
    reference_model = build_model("small-cnn", (1, 28, 28), 10).to("meta", memory_format=torch.channels_last)
    reference = build_optimizer(name, reference_model.parameters(), 1e-3)
    reference.load_state_dict(first.optimizer.state_dict())
    checked = 0
    for param, theirs_param in zip(model.parameters(), reference_model.parameters(), strict=True):
        assert param.device.type == "meta"
        ours, theirs = resumed.optimizer.state[param], reference.state[theirs_param]
        assert ours.keys() == theirs.keys()
        for key, value in ours.items():
            if torch.is_tensor(value):
                checked += 1
                assert (value.device, value.dtype) == (theirs[key].device, theirs[key].dtype), (name, key)
                if value.shape == param.shape:  # moments: the parameter's layout too (fused kernels walk both alike)
                    assert value.stride() == param.stride(), (name, key)
    assert checked or name == "sgd"  # plain SGD keeps no tensors
    if name in ("adam", "adamw"):  # fused: every tensor on the parameter's device, the 0-d step counter included
        steps = [state["step"] for state in resumed.optimizer.state.values()]
        assert steps and all(s.device.type == "meta" and s.dim() == 0 for s in steps)


FLOAT16_ON_CPU = DeviceInfo(torch.device("cpu"), "CPU", torch.float16, True)  # float16 autocast + scaler, no GPU


def float16_trainer(data, epochs=3):
    model = build_model("small-cnn", (1, 28, 28), 10, seed=3)
    return Trainer(model, build_optimizer("adamw", model.parameters(), 3e-3), data, FLOAT16_ON_CPU, batch_size=64,
                   epochs=epochs, schedule="onecycle", seed=3, augmentation=Augmentation(rotation_deg=10))


def test_the_float16_gradient_scaler_is_in_the_checkpoint_and_the_resume_is_exact(digits):
    whole = float16_trainer(digits)
    reference = [e.loss for e in whole.fit().batches]
    first = float16_trainer(digits)
    first.on("epoch_end", lambda e: first.stop() if e.epoch == 1 else None)
    part_one = [e.loss for e in first.fit().batches]
    tensors, plain = first.state()
    saved_scale = first.scaler.get_scale()
    assert first.scaler.is_enabled() and saved_scale != 2.0**16  # it moved from its start (an overflow halved it)
    weights = {k: v.clone() for k, v in first.model.state_dict().items()}

    second = float16_trainer(digits)
    second.model.load_state_dict(weights)
    second.load_state(tensors, json.loads(json.dumps(plain)))  # the plain part survives JSON, as on disk
    assert second.scaler.state_dict() == first.scaler.state_dict()
    part_two = [e.loss for e in second.fit().batches]
    assert part_one + part_two == reference


def test_the_guard_goes_back_to_the_weights_from_before_the_step_that_blew_up(mnist5k):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    every_digit = ImageSet(mnist5k.train.images[::10], mnist5k.train.labels[::10])
    float32 = DeviceInfo(torch.device("cpu"), "CPU", None, True)
    trainer = Trainer(model, build_optimizer("momentum", model.parameters(), 5.0), every_digit, float32,
                      batch_size=64, epochs=3)
    after = [{k: v.clone() for k, v in model.state_dict().items()}]  # after[k]: the weights after k steps
    trainer.on("batch_end", lambda _e: after.append({k: v.clone() for k, v in model.state_dict().items()}))
    history = trainer.fit()
    step = history.diverged_at
    assert step is not None and step >= 3  # a few good steps first: the guard's two copies both took turns
    # Step `step` computed its loss with the weights that step - 1 made; they are the bad ones, so the model goes
    # back to those from before that step.
    kept = after[step - 2]
    assert all(torch.equal(value, kept[key]) for key, value in model.state_dict().items())
    assert not all(torch.equal(value, after[step - 1][key]) for key, value in model.state_dict().items())


def test_dropout_draws_its_mask_where_its_generator_lives():
    layer = Dropout(0.5).train()
    layer.generator = torch.Generator("cpu").manual_seed(0)
    x = torch.ones(4, 1000)
    expected = (torch.rand(x.shape, generator=torch.Generator("cpu").manual_seed(0)) >= 0.5) * 2.0
    assert torch.equal(layer(x), expected)


def test_mobilenets_dropout_draws_from_the_runs_generator():
    model = build_model("mobilenet-v3-small", (3, 32, 32), 10)
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(isinstance(m, Dropout) for m in dropouts)
