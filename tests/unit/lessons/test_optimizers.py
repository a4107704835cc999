"""Optimizer races on 2-D surfaces, and the article's SGD and Adam by hand against torch.optim over 100 steps."""
import pytest
import torch

from dlplay.lessons.optimizers import RACE_OPTIMIZERS, SURFACES, article_adam, article_sgd, grid, run, surface_gradient


@pytest.mark.parametrize("name", list(SURFACES))
def test_minima_are_minima_and_the_grid_covers_the_window(name):
    surface = SURFACES[name]
    for mx, my in surface.minima:
        point = torch.tensor([mx, my], dtype=torch.float64)
        assert surface_gradient(surface)(point).abs().max() < 1e-4
    xs, ys, zs = grid(surface, 20)
    assert (xs[0], xs[-1]) == pytest.approx(surface.x_range) and len(zs) == 20 and len(zs[0]) == 20


def test_the_race_runs_every_torch_optimizer_and_adam_reaches_the_quadratic_minimum():
    surface = SURFACES["ill-conditioned quadratic"]
    paths = {name: run(surface, name, surface.start, 500) for name in RACE_OPTIMIZERS}
    assert all(len(p.points) == 501 and p.diverged_at is None for p in paths.values())
    assert paths["Adam"].reached_at is not None and paths["SGD + momentum"].reached_at is not None
    assert paths["SGD"].losses[-1] < paths["SGD"].losses[0]


def test_learning_rate_ten_times_too_big_diverges_and_is_caught():
    surface = SURFACES["ill-conditioned quadratic"]
    slow, good, wild = (run(surface, "SGD", surface.start, 200, {"lr": lr}) for lr in (0.005, 0.05, 0.5))
    assert wild.diverged_at is not None and good.diverged_at is None and slow.diverged_at is None
    assert good.losses[-1] < slow.losses[-1]
    saddle = run(SURFACES["saddle"], "SGD", SURFACES["saddle"].start, 200, {"lr": 0.1})
    assert saddle.escaped_at is not None and saddle.diverged_at is None  # no bottom: running off is escaping
    assert saddle.escaped_at is not None and wild.diverged_at is not None


def test_optimizer_state_is_captured_at_the_chosen_step():
    surface = SURFACES["Rosenbrock"]
    path = run(surface, "Adam", surface.start, 20, state_step=10)
    assert set(path.state) == {"exp_avg", "exp_avg_sq"} and len(path.state["exp_avg"]) == 2
    momentum = run(surface, "SGD + momentum", surface.start, 20, state_step=5)
    assert set(momentum.state) == {"momentum_buffer"}


def test_article_sgd_matches_torch_optim_sgd_over_100_steps():
    surface = SURFACES["Rosenbrock"]
    grad = surface_gradient(surface)
    start = torch.tensor(surface.start, dtype=torch.float64)
    mine = article_sgd(grad, start, 1e-4, 100)
    point = start.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([point], lr=1e-4)
    for step in range(100):
        optimizer.zero_grad()
        surface.f(point[0], point[1]).backward()
        optimizer.step()
        assert torch.allclose(mine[step + 1], point.detach(), atol=1e-6, rtol=0)


def test_article_adam_matches_torch_optim_adam_over_100_steps():
    surface = SURFACES["Beale"]
    grad = surface_gradient(surface)
    start = torch.tensor(surface.start, dtype=torch.float64)
    records = article_adam(grad, start, 0.05, 100)
    point = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([point], lr=0.05)
    for step in range(100):
        optimizer.zero_grad()
        surface.f(point[0], point[1]).backward()
        optimizer.step()
        state = optimizer.state[point]
        assert torch.allclose(records[step]["theta"], point.detach(), atol=1e-6, rtol=0)
        assert torch.allclose(records[step]["m"], state["exp_avg"], atol=1e-6, rtol=0)
        assert torch.allclose(records[step]["v"], state["exp_avg_sq"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("surface_name", ["Rosenbrock", "Rastrigin", "saddle"])
def test_a_race_gives_each_optimizer_the_same_path_as_running_it_alone(surface_name):
    from dlplay.lessons.optimizers import race
    surface = SURFACES[surface_name]
    settings = {"SGD": {"lr": 0.1 if surface_name == "saddle" else 1e-3}}
    together = race(surface, list(RACE_OPTIMIZERS), surface.start, 300, settings)
    for path in together:
        alone = run(surface, path.name, surface.start, 300, settings.get(path.name))
        assert torch.allclose(torch.tensor(path.points), torch.tensor(alone.points), atol=1e-12, rtol=0), path.name
        assert (path.reached_at, path.diverged_at, path.escaped_at) == \
            (alone.reached_at, alone.diverged_at, alone.escaped_at)


def test_an_empty_race_has_no_paths_and_the_state_follows_the_schedule():
    from dlplay.lessons.optimizers import race
    surface = SURFACES["Rosenbrock"]
    assert race(surface, [], surface.start, 100) == []
    scheduled = race(surface, ["Adam", "Adagrad"], surface.start, 50, schedule="onecycle", state_step=20)
    for path in scheduled:
        alone = run(surface, path.name, surface.start, 50, schedule="onecycle", state_step=20)
        assert path.state == alone.state  # the caption's numbers are the race's numbers
        assert path.state != run(surface, path.name, surface.start, 50, state_step=20).state


def test_the_log_grid_keeps_the_order_of_the_surface_and_starts_at_zero():
    from dlplay.lessons.optimizers import log_grid
    surface = SURFACES["Rosenbrock"]
    _, _, raw = grid(surface, 30)
    _, _, logged = log_grid(surface, 30)
    flat_raw, flat_log = torch.tensor(raw).flatten(), torch.tensor(logged).flatten()
    assert float(flat_log.min()) == 0.0
    assert torch.equal(flat_raw.argsort(), flat_log.argsort())


def test_the_loss_axis_is_held_only_for_a_surface_without_a_bottom():
    from dlplay.lessons.optimizers import SURFACES, loss_axis_range
    assert loss_axis_range(SURFACES["Rosenbrock"]) is None
    low, high = loss_axis_range(SURFACES["saddle"])  # x² − y² over [−3, 3]²: from −9 (x = 0, y = ±3) to 9
    assert (low, high) == pytest.approx((-9.9, 9.9), abs=0.01)  # and 5% of the span as room


def test_a_run_that_leaves_the_saddles_square_is_stopped_there_not_finished():
    from dlplay.lessons.optimizers import race
    surface = SURFACES["saddle"]
    paths = race(surface, ["SGD", "SGD + momentum", "Adam"], surface.start, 500, state_step=500)
    for path in paths:
        assert path.escaped_at is not None and path.diverged_at is None, path.name  # SGD alone would reach −3.98e4
        assert len(path.points) == path.escaped_at + 1
        assert all(surface.holds(x, y) for x, y in path.points[:-1]) and not surface.holds(*path.points[-1])
        assert path.losses[-1] > -20
    momentum = paths[1]
    assert set(momentum.state) == {"momentum_buffer"}  # the state it stopped with, not an empty one


def test_a_non_finite_loss_is_divergence_on_a_bounded_surface():
    surface = SURFACES["Rosenbrock"]
    path = run(surface, "SGD", surface.start, 200, {"lr": 0.1})
    assert path.diverged_at is not None and path.escaped_at is None
    assert len(path.points) == path.diverged_at + 1
