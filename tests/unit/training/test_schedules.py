"""Learning-rate schedules: one registry for trainer, CLI and race; one-cycle leaves plain SGD plain."""
import pytest
import torch

from dlplay.training.schedules import SCHEDULES, build_schedule, cycles_momentum, lr_trace


def quadratic_steps(optimizer, point, steps, scheduler=None):
    """Minimise |point - 3|² for `steps` steps; returns the learning rate and momentum used at each step."""
    used = []
    for _ in range(steps):
        optimizer.zero_grad()
        ((point - 3) ** 2).sum().backward()
        group = optimizer.param_groups[0]
        used.append((group["lr"], group.get("momentum")))
        optimizer.step()
        if scheduler:
            scheduler.step()
    return used


def test_plain_sgd_stays_plain_under_one_cycle():
    point = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([point], lr=0.1)
    used = quadratic_steps(optimizer, point, 40, build_schedule("onecycle", optimizer, 40))
    assert {m for _, m in used} == {0}  # never given momentum
    # The oracle: plain gradient descent with the same learning rates, written out (∇|p - 3|² = 2(p - 3)).
    expected = torch.zeros(2, dtype=torch.float64)
    for lr, _ in used:
        expected = expected - lr * 2 * (expected - 3)
    assert torch.allclose(point.detach(), expected, atol=1e-12, rtol=0)


def test_one_cycle_cycles_momentum_only_where_there_is_momentum():
    params = [torch.zeros(1, requires_grad=True)]
    assert not cycles_momentum(torch.optim.SGD(params, lr=0.1))
    assert not cycles_momentum(torch.optim.RMSprop(params, lr=0.1))
    assert not cycles_momentum(torch.optim.Adagrad(params, lr=0.1))
    assert cycles_momentum(torch.optim.SGD(params, lr=0.1, momentum=0.9))
    assert cycles_momentum(torch.optim.Adam(params, lr=0.1))
    point = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.SGD([point], lr=0.1, momentum=0.9)
    momenta = [m for _, m in quadratic_steps(optimizer, point, 40, build_schedule("onecycle", optimizer, 40))]
    assert min(momenta) == pytest.approx(0.85, abs=0.01) and max(momenta) == pytest.approx(0.95)


def test_adagrad_takes_one_cycle_without_an_error():
    point = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.Adagrad([point], lr=0.5)
    used = quadratic_steps(optimizer, point, 40, build_schedule("onecycle", optimizer, 40))
    rates = [lr for lr, _ in used]
    assert max(rates) == pytest.approx(0.5) and rates.index(max(rates)) == 9  # the peak a quarter into the run


def test_every_schedule_has_its_shape():
    traces = {name: lr_trace(name, 0.1, 300) for name in SCHEDULES}
    assert all(len(t) == 300 and t[0] <= 0.1 + 1e-12 for t in traces.values())
    assert set(traces["constant"]) == {0.1}
    assert traces["step"][99] == pytest.approx(0.1) and traces["step"][100] == pytest.approx(0.05)
    assert traces["step"][-1] == pytest.approx(0.025)
    assert traces["exponential"][-1] == pytest.approx(0.1 * 0.01 ** (299 / 300))
    assert traces["cosine"][150] == pytest.approx(0.05) and traces["cosine"][-1] < 1e-4
    peak = max(traces["onecycle"])
    assert peak == pytest.approx(0.1) and traces["onecycle"].index(peak) == 74 and traces["onecycle"][-1] < 1e-5
    with pytest.raises(ValueError, match="choose one of: constant, step"):
        build_schedule("warmup", torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), 10)


def test_the_trainers_plain_sgd_stays_plain(mnist5k, cpu):
    from dlplay.data import ImageSet
    from dlplay.models import build_model
    from dlplay.training.trainer import Trainer, build_optimizer
    model = build_model("small-cnn", (1, 28, 28), 10)
    optimizer = build_optimizer("sgd", model.parameters(), 0.05)
    seen = []
    data = ImageSet(mnist5k.train.images[:256], mnist5k.train.labels[:256])
    trainer = Trainer(model, optimizer, data, cpu, batch_size=64, epochs=2, schedule="onecycle")
    trainer.on("batch_end", lambda event: seen.append(optimizer.param_groups[0]["momentum"]))
    trainer.fit()
    assert seen == [0] * 8


@pytest.mark.parametrize("name", ["onecycle", "cosine", "step", "exponential"])
def test_every_schedule_runs_however_few_steps_a_run_has(name):
    for steps in range(1, 41):  # a 4-step one-cycle run once divided by zero inside OneCycleLR
        rates = lr_trace(name, 0.1, steps)
        assert len(rates) == steps and all(0 < r <= 0.1 + 1e-12 for r in rates), (steps, rates)
