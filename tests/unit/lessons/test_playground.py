"""The network playground's core: datasets, CSV points with one sentence per problem, features, the network,
its loss and penalties (checked against torch.nn.functional and autograd), training and the surface it draws."""
import threading

import pytest
import torch
from torch.nn import functional as F

from dlplay.lessons.playground import (
    CLASSIFICATION,
    DATASETS,
    EPOCHS_PER_UPDATE,
    EXTENT,
    REGRESSION,
    NetworkConfig,
    Session,
    epochs_per_update,
    feature_matrix,
    linear_layers,
    loss_of,
    make_points,
    penalty,
    read_points_csv,
    train_together,
    verdicts,
)
from dlplay.limits import limits


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_is_seeded_split_and_labelled(name):
    points = make_points(name, 200, noise=0.2, train_fraction=0.7, seed=3)
    again = make_points(name, 200, noise=0.2, train_fraction=0.7, seed=3)
    assert torch.equal(points.train_x, again.train_x) and torch.equal(points.test_y, again.test_y)
    assert (len(points.train_x), len(points.test_x)) == (140, 60) and points.train_x.shape[1] == 2
    assert points.train_x.abs().max() < EXTENT
    if points.task == CLASSIFICATION:
        labels = torch.cat([points.train_y, points.test_y])
        assert set(labels.tolist()) == set(range(points.classes))
    else:
        assert points.classes == 1 and points.train_y.is_floating_point()
    assert not torch.equal(make_points(name, 200, 0.2, 0.7, seed=4).train_x, points.train_x)


def csv_bytes(text: str) -> bytes:
    return text.strip().encode() + b"\n"


def test_a_users_csv_becomes_points_fitted_to_the_plane():
    rows = "\n".join(f"{i},{-i * 2},{i % 3}" for i in range(30))
    points = read_points_csv(csv_bytes("x1,x2,label\n" + rows), train_fraction=0.5, seed=0)
    assert points.task == CLASSIFICATION and points.classes == 3 and len(points.train_x) == 15
    assert torch.cat([points.train_x, points.test_x]).abs().max() <= EXTENT
    target = read_points_csv(csv_bytes("X1, x2 ,Target\n1,2,0.5\n3,4,1.5\n5,6,2\n7,8,3"), 0.5, 0)
    assert target.task == REGRESSION and target.train_y.is_floating_point()


@pytest.mark.parametrize("text, sentence", [
    ("a,b,c\n1,2,3", "missing: x1, x2, label or target"),
    ("x1,x2\n1,2", "missing: label or target"),
    ("", "missing: x1, x2"),
    ("x1,x2,label\n1,2,0\n3,4,1", "at least 4 points"),
    ("x1,x2,label\n1,2,0\n3,four,1\n5,6,0\n7,8,1", "line 3 has a value that is not a number"),
    ("x1,x2,label\n1,2,0\n3,4,0\n5,6,0\n7,8,0", "every point has the same label"),
    ("x1,x2,label\n1,2,0.5\n3,4,1\n5,6,0\n7,8,1", "whole numbers"),
    ("x1,x2,label\n1,2,nan\n3,4,1\n5,6,0\n7,8,1", "infinite or NaN"),
])
def test_a_bad_csv_gets_one_sentence(text, sentence):
    with pytest.raises(ValueError, match=sentence):
        read_points_csv(text.encode(), 0.5, 0)


def test_too_many_rows_and_binary_files_are_refused():
    rows = limits().csv_rows
    with pytest.raises(ValueError, match=f"has {2 * rows:,} points; the playground takes at most {rows:,}"):
        read_points_csv(("x1,x2,label\n" + "1,2,0\n3,4,1\n" * rows).encode(), 0.5, 0)
    exactly = read_points_csv(("x1,x2,label\n" + "1,2,0\n3,4,1\n" * (rows // 2)).encode(), 0.5, 0)
    assert len(exactly.train_x) + len(exactly.test_x) == rows  # the limit itself is allowed
    with pytest.raises(ValueError, match="not text"):
        read_points_csv(b"\xff\xfe\x00\x81binary", 0.5, 0)


def test_features_are_the_named_functions_of_the_two_coordinates():
    x = torch.tensor([[0.5, -2.0], [3.0, 1.5]])
    got = feature_matrix(x, ("x₁", "x₂", "x₁²", "x₂²", "x₁x₂", "sin x₁", "sin x₂"))
    a, b = x[:, 0], x[:, 1]
    assert torch.allclose(got, torch.stack([a, b, a ** 2, b ** 2, a * b, a.sin(), b.sin()], 1))


def test_two_class_cross_entropy_is_the_logistic_loss_of_the_score_difference():
    scores = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 2, (50,), generator=torch.Generator().manual_seed(1))
    expected = F.binary_cross_entropy_with_logits(scores[:, 1] - scores[:, 0], y.float())
    assert loss_of(CLASSIFICATION, scores, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_penalties_push_each_weight_by_its_sign_or_its_size():
    session = Session(make_points("XOR", 40, 0.0, 0.5, 0), NetworkConfig(hidden=(3,), activations=("tanh",)), 0)
    weights = [m.weight for m in session.model if isinstance(m, torch.nn.Linear)]
    for regularizer, expected in (("L1", [w.sign() for w in weights]), ("L2", [w.detach() for w in weights])):
        grads = torch.autograd.grad(penalty(session.model, regularizer), weights)
        assert all(torch.allclose(g, e) for g, e in zip(grads, expected, strict=True))


@pytest.mark.parametrize("regularizer, rate", [("L1", 0.003), ("L2", 0.01), ("none", 0.01)])
def test_the_loss_and_the_penalty_are_recorded_apart_and_add_up_to_what_training_minimises(regularizer, rate):
    """train_losses is the data loss alone; penalties is rate × Σ|w| (L1) or rate × ½Σw² (L2) over the weights, not
    the biases; their sum is the objective whose gradient an SGD step follows (checked on one full batch)."""
    points = make_points("circle", 40, 0.1, 0.5, 0)
    config = NetworkConfig(hidden=(4, 3), activations=("tanh", "ReLU"), regularizer=regularizer, reg_rate=rate,
                           lr=0.1, batch_size=len(points.train_x))
    session = Session(points, config, 0)
    session.train(3)
    for epoch in range(4):
        model = session.model_at(epoch)
        weights = [v for k, v in model.state_dict().items() if k.endswith("weight")]
        expected = {"L1": rate * sum(w.abs().sum() for w in weights),
                    "L2": rate * 0.5 * sum((w ** 2).sum() for w in weights), "none": torch.zeros(())}[regularizer]
        assert session.penalties[epoch] == pytest.approx(float(expected), rel=1e-6)
        with torch.no_grad():
            data = F.cross_entropy(model(session.train_inputs), points.train_y)
        assert session.train_losses[epoch] == pytest.approx(float(data), rel=1e-6)
    with torch.no_grad():
        session.model[0].bias.add_(1.0)  # biases are not penalised
        assert session.penalty_term().item() == pytest.approx(session.penalties[3], rel=1e-6)
    parameters = dict(session.model.named_parameters())
    weights = [w for name, w in parameters.items() if name.endswith("weight")]
    penalty_now = {"L1": lambda: rate * sum(w.abs().sum() for w in weights),
                   "L2": lambda: rate * 0.5 * sum((w ** 2).sum() for w in weights), "none": lambda: 0.0}[regularizer]()
    objective = F.cross_entropy(session.model(session.train_inputs), points.train_y) + penalty_now
    grads = torch.autograd.grad(objective, list(parameters.values()))
    before = {name: p.detach().clone() for name, p in parameters.items()}
    session.train(1)
    for (name, old), grad in zip(before.items(), grads, strict=True):
        assert torch.allclose(parameters[name].detach(), old - 0.1 * grad, atol=1e-6), name


def test_the_circle_is_learned_with_squared_features_and_the_surface_shows_it():
    points = make_points("circle", 300, 0.0, 0.8, seed=0)
    config = NetworkConfig(features=("x₁²", "x₂²"), hidden=(4,), activations=("tanh",), optimizer="Adam", lr=0.03)
    session = Session(points, config, seed=0)
    session.train(30)
    assert session.epoch == 30 and len(session.train_losses) == 31
    assert session.test_losses[-1] < 0.1 < session.test_losses[0]
    axis, values = session.surface(21)
    assert values.shape == (21, 21) and axis[0] == -EXTENT
    assert values[10, 10] > 0.5 and values[0, 0] < -0.5  # inside is class 1, the corner class 0


def test_regression_and_many_classes_train_too():
    bumps = Session(make_points("Gaussian bumps (regression)", 300, 0.0, 0.8, 0),
                    NetworkConfig(hidden=(8, 8), activations=("tanh", "tanh"), optimizer="Adam", lr=0.01), 0)
    bumps.train(40)
    assert bumps.test_losses[-1] < 0.5 * bumps.test_losses[0]
    four = Session(make_points("four clusters (4 classes)", 200, 0.0, 0.8, 0),
                   NetworkConfig(hidden=(6,), activations=("ReLU",), optimizer="Adam", lr=0.03), 0)
    four.train(20)
    assert four.test_losses[-1] < 0.2
    assert set(four.surface(15)[1].unique().tolist()) == {0.0, 1.0, 2.0, 3.0}  # every class has its region


def test_a_seed_gives_the_same_run_whatever_else_uses_the_global_generator():
    config = NetworkConfig(hidden=(5, 5), activations=("ReLU", "tanh"), dropout=0.3)
    runs = []
    for noise_seed in (1, 2):
        torch.manual_seed(noise_seed)  # another session drawing from the shared generator
        session = Session(make_points("spiral", 100, 0.1, 0.5, 0), config, seed=7)
        session.train(3)
        runs.append(session.train_losses)
    assert runs[0] == runs[1]


def test_an_impossible_network_is_one_sentence():
    points = make_points("XOR", 20, 0.0, 0.5, 0)
    with pytest.raises(ValueError, match="at least one input feature"):
        Session(points, NetworkConfig(features=()), 0)
    with pytest.raises(ValueError, match="at most 8 hidden layers of 1 to 16 neurons"):
        Session(points, NetworkConfig(hidden=(17,), activations=("ReLU",)), 0)


@pytest.mark.slow
@pytest.mark.parametrize("extra", [{}, {"regularizer": "L2", "reg_rate": 0.001},
                                   {"regularizer": "L1", "reg_rate": 0.001},
                                   {"regularizer": "L2", "reg_rate": 0.001, "dropout": 0.1}])
def test_the_exported_script_reproduces_the_apps_losses(tmp_path, extra):
    """The script starts from the same weights and draws the same batches: without dropout it prints the app's own
    losses to the 4 decimals it prints (the app's fused Adam against the script's plain one differ by ~1e-7). With
    dropout, the masks come from another generator: the same lesson, not the same numbers."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    from dlplay.lessons.playground import pytorch_script
    repo = Path(__file__).resolve().parents[3]
    config = NetworkConfig(features=("x₁²", "x₂²"), hidden=(4,), activations=("tanh",), optimizer="Adam", lr=0.03,
                           **extra)
    script = tmp_path / "playground_run.py"
    script.write_text(pytorch_script("circle", 200, 0.0, 0.8, 1, config, epochs=30))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(repo)})
    assert done.returncode == 0, done.stderr
    printed = re.search(r"training loss ([0-9.]+), test loss ([0-9.]+)", done.stdout)
    theirs = float(printed.group(1)), float(printed.group(2))
    session = Session(make_points("circle", 200, 0.0, 0.8, 1), config, seed=0)
    session.train(30)
    ours = session.train_losses[-1], session.test_losses[-1]
    assert ours[1] < 0.15
    if config.dropout:
        assert theirs[1] < 2 * ours[1] + 0.05
    else:
        assert theirs == pytest.approx(ours, abs=0.5e-4 + 1e-6)  # the script rounds to 4 decimals


def test_the_time_slider_sees_the_network_as_it_was():
    session = Session(make_points("XOR", 100, 0.1, 0.5, 0), NetworkConfig(optimizer="Adam", lr=0.05), 0)
    _, before = session.surface(15)
    session.train(4)
    _, now = session.surface(15)
    assert torch.equal(session.surface(15, epoch=0)[1], before) and not torch.equal(now, before)
    assert torch.equal(session.surface(15, epoch=4)[1], now)


def test_long_runs_keep_a_bounded_number_of_past_networks(monkeypatch):
    import dlplay.lessons.playground as playground
    monkeypatch.setattr(playground, "MAX_SNAPSHOTS", 10)
    session = Session(make_points("XOR", 40, 0.1, 0.5, 0), NetworkConfig(), 0)
    session.train(37)
    kept = session.epochs_kept()
    assert len(kept) <= 11 and kept[0] == 0 and kept[-1] == 37
    assert all(e % session.snapshot_stride == 0 for e in kept[:-1]) and session.snapshot_stride > 1


def test_each_nodes_picture_is_its_value_over_the_plane_inputs_to_outputs():
    session = Session(make_points("circle", 50, 0.0, 0.5, 0), NetworkConfig(features=("x₁", "x₂²"), hidden=(4, 2)), 0)
    columns = session.node_surfaces(9)
    assert [tuple(t.shape) for t in columns] == [(2, 9, 9), (4, 9, 9), (2, 9, 9), (2, 9, 9)]
    first = session.model[0]
    axis = torch.linspace(-EXTENT, EXTENT, 9)
    x1, x2 = axis[7], axis[2]  # column 7 (x₁), row 2 (x₂)
    assert torch.allclose(columns[0][:, 2, 7], torch.stack([x1, x2 * x2]))  # the features themselves
    expected = torch.tanh(first.weight[:, 0] * x1 + first.weight[:, 1] * x2 * x2 + first.bias)
    assert torch.allclose(columns[1][:, 2, 7], expected.detach(), atol=1e-6)
    scores = session.model(torch.stack([x1, x2 * x2])[None])
    assert torch.allclose(columns[3][:, 2, 7], F.softmax(scores, 1)[0].detach(), atol=1e-6)  # each class's probability
    regression = Session(make_points("plane (regression)", 50, 0.0, 0.5, 0),
                         NetworkConfig(hidden=(3,), activations=("tanh",)), 0)
    *__, prediction = regression.node_surfaces(5)
    assert torch.allclose(prediction[0], regression.surface(5)[1])  # the output: the prediction itself


def test_compared_networks_train_in_rounds_and_a_later_one_catches_up_first():
    points = make_points("XOR", 40, 0.1, 0.5, 0)
    a = Session(points, NetworkConfig(), 0)
    a.train(3)
    b = Session(points, NetworkConfig(features=("x₁x₂",), hidden=(2,), activations=("ReLU",)), 0)
    train_together([a, b], 2)
    assert (a.epoch, b.epoch) == (3, 2)  # A waits while B catches up...
    train_together([a, b], 3)
    assert (a.epoch, b.epoch) == (5, 5)  # ...then both train
    rounds = []
    train_together([a, b], 10, keep_going=lambda: rounds.append(1) or len(rounds) <= 4)
    assert (a.epoch, b.epoch) == (9, 9)  # asked before each round: four said yes


def test_a_reader_holding_the_locks_never_sees_compared_networks_apart():
    points = make_points("circle", 200, 0.1, 0.5, 0)
    sessions = [Session(points, NetworkConfig(batch_size=1), 0), Session(points, NetworkConfig(batch_size=1), 1)]
    looked = threading.Event()

    def after_a_look() -> bool:  # each round waits for one more look, so the reader interleaves on any CPU
        ok = looked.wait(timeout=60)
        looked.clear()
        return ok

    trainer = threading.Thread(target=train_together, args=(sessions, 12, after_a_look))
    seen = set()
    trainer.start()
    while trainer.is_alive():
        with sessions[0].lock, sessions[1].lock:  # as the page takes them to draw, at any moment of a round
            seen.add((sessions[0].epoch, sessions[1].epoch))
        looked.set()
        trainer.join(timeout=0.002)  # room for the trainer to take the locks
    assert all(a == b for a, b in seen) and len(seen) >= 6 and sessions[1].epoch == 12


def test_a_session_keeps_the_verdict_a_replay_of_its_trace_gives():
    session = Session(make_points("circle", 60, 0.0, 0.5, 0), NetworkConfig(hidden=(8,), activations=("ReLU",)), 0)
    assert session.verdict().kind == "start"
    with torch.no_grad():
        session.model[0].bias.fill_(-100.0)  # every unit below zero everywhere: dead
    session.train(7)
    session.set_weight(1, 0, 0, 0.5)  # the last epoch's numbers and verdict are recorded again
    verdict = session.verdict()
    assert session.dead_neurons() == (8, 8) and verdict.kind == "dead" and (verdict.dead, verdict.neurons) == (8, 8)
    replayed = verdicts(session.trace())
    assert [v.kind for v in replayed] == session.shown and replayed[-1] == verdict
    assert len(session.dead) == len(session.weight_sizes) == len(session.train_losses) == 8


def test_a_weight_set_by_hand_changes_the_losses_and_training_goes_on_from_it():
    session = Session(make_points("XOR", 60, 0.0, 0.5, 0), NetworkConfig(optimizer="Adam", lr=0.05), 0)
    session.train(2)
    before = session.test_losses[-1]
    session.set_weight(0, 1, 0, 5.0)
    assert linear_layers(session.model)[0].weight[1, 0].item() == 5.0
    assert len(session.test_losses) == 3 and session.test_losses[-1] != before
    with torch.no_grad():
        expected = loss_of(CLASSIFICATION, session.model.eval()(session.test_inputs), session.points.test_y).item()
    assert session.test_losses[-1] == pytest.approx(expected)
    session.train(1)
    assert session.epoch == 3 and linear_layers(session.model)[0].weight[1, 0].item() != 5.0


def test_retuning_keeps_the_weights_and_a_new_architecture_does_not():
    session = Session(make_points("XOR", 60, 0.0, 0.5, 0), NetworkConfig(), 0)
    session.train(2)
    weights = linear_layers(session.model)[0].weight.detach().clone()
    assert session.retune(NetworkConfig(optimizer="Adam", lr=0.1, batch_size=5, regularizer="L2", reg_rate=0.01))
    assert torch.equal(linear_layers(session.model)[0].weight, weights) and session.epoch == 2
    assert isinstance(session.optimizer, torch.optim.Adam) and session.optimizer.param_groups[0]["lr"] == 0.1
    session.train(1)
    assert session.epoch == 3
    assert not session.retune(NetworkConfig(hidden=(3,), activations=("tanh",)))


def test_a_two_by_eight_tanh_network_learns_the_spiral():
    """The issue's yardstick, counted in epochs (deterministic) rather than seconds: ≥ 95% test accuracy."""
    points = make_points("spiral", 300, 0.05, 0.5, seed=0)
    config = NetworkConfig(features=("x₁", "x₂", "sin x₁", "sin x₂"), hidden=(8, 8), activations=("tanh", "tanh"),
                           optimizer="Adam", lr=0.03)
    session = Session(points, config, seed=0)
    session.train(60)
    assert len(session.test_accuracies) == 61 and session.test_accuracies[10] < 0.95  # it had to learn it
    assert min(session.test_accuracies[30:]) >= 0.95  # and keeps it
    with torch.no_grad():
        predicted = session.model.eval()(session.test_inputs).argmax(1)
    assert session.test_accuracies[-1] == pytest.approx((predicted == points.test_y).float().mean().item())


def test_a_live_update_trains_fewer_epochs_when_an_epoch_takes_many_steps():
    assert epochs_per_update(150, [10], 2_000) == (EPOCHS_PER_UPDATE, 15)  # the defaults: 15 steps an epoch
    assert epochs_per_update(900, [1], 2_000) == (2, 900)
    assert epochs_per_update(900, [1, 3], 2_000) == (1, 1_200)  # two compared networks share the update
    assert epochs_per_update(4_750, [1], 2_000) == (0, 4_750)  # one epoch alone is over the limit
