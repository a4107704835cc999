"""Figures said in words: the sentences and tables read from real figures built by ui/charts.py, and the
playground's picture said by region, on grids whose regions are known (a disc, half-planes, XOR quadrants)."""
import math

import numpy as np
import pytest
import torch

from dlplay.lessons import playground
from dlplay.training.trainer import EpochEvent
from ui import chart_words, charts


@pytest.mark.parametrize(("value", "percent", "written"), [
    (0.918, True, "91.8%"), (12000, False, "12,000"), (12000.0, False, "12,000"), (1.234e-9, False, "1.23e-9"),
    (2.5e7 + 0.5, False, "2.50e7"), (2.3026, False, "2.3"), (0.0813, False, "0.0813"), (123.4, False, "123"),
    (-0.5, False, "-0.5"), (None, False, "—"), (math.nan, False, "—"), (math.inf, True, "—")])
def test_numbers_are_written_as_on_the_axes_and_in_the_tables(value, percent, written):
    assert chart_words.number(value, percent) == written


def test_a_curve_is_said_by_where_it_starts_and_ends_and_its_extremes():
    figure = charts.lines({"training": [2.3, 0.9, 0.05, 0.08], "test": [2.4, 1.1, 0.5, 0.6]}, range(1, 5),
                          x_title="epoch", y_title="loss")
    said = chart_words.describe(figure)
    assert "training goes from 2.3 at epoch 1 to 0.08 at 4; lowest 0.05, highest 2.3." in said
    assert "test goes from 2.4 at epoch 1 to 0.6 at 4; lowest 0.5, highest 2.4." in said


def test_a_marked_x_is_said_as_each_curves_value_there():
    xs = torch.linspace(-5, 5, 101, dtype=torch.float64)
    figure = charts.lines({"sigmoid": torch.sigmoid(xs).tolist(), "ReLU": torch.relu(xs).tolist()}, xs.tolist(),
                          "x", title="f(x)", mark_x=1.0)
    sigmoid_at_1 = float(torch.sigmoid(torch.tensor(1.0, dtype=torch.float64)))  # the oracle: torch, not the chart
    assert chart_words.describe(figure) == f"At x 1, f(x): sigmoid {sigmoid_at_1:.3f}, ReLU 1."


def test_many_curves_are_named_up_to_a_few_and_the_rest_left_to_the_table():
    figure = charts.lines({f"run {i}": [1.0, 0.5] for i in range(7)}, x_title="step")
    said = chart_words.describe(figure)
    assert said.count(" goes from ") == chart_words.MOST_TRACES and said.endswith("And 3 more in the table.")


def test_bars_are_said_by_their_highest_and_lowest_as_percentages():
    assert chart_words.describe(charts.bars(["cat", "dog", "bird"], [0.2, 0.7, 0.1])) == (
        "Highest: dog (70.0%); lowest: bird (10.0%).")
    figure = charts.per_class_accuracy(["0", "1", "<b>8</b>"], [0.95, 0.99, 0.9])
    assert chart_words.describe(figure) == r"Highest: 1 (99.0%); lowest: \<b\>8\</b\> (90.0%)."  # as text
    counts = chart_words.describe(charts.class_counts(["a", "b"], [500, 430], [90, 110]))
    assert counts == "train: highest a (500), lowest b (430). test: highest b (110), lowest a (90)."


def test_a_heat_map_is_said_by_its_range_and_where_its_largest_is():
    values = np.array([[0.0, 1.0, 2.0, 3.0], [4.0, 11.0, 6.0, 7.0], [8.0, 9.0, 10.0, 5.0]])
    figure = charts.pixel_grid(values, title="output map")
    assert chart_words.describe(figure) == "Values from 0 to 11; the largest at row 1, column 1."
    frame, __ = chart_words.table(figure)
    assert frame.shape == (3, 5) and frame.iloc[1, 2] == 11 and list(frame["row"]) == ["0", "1", "2"]


def test_a_confusion_matrix_is_said_by_its_accuracy_and_its_most_common_mistake():
    confusion = torch.tensor([[50, 2, 0], [3, 40, 1], [0, 12, 45]])
    figure = charts.confusion_matrix(confusion, ["3", "4", "9"])
    assert chart_words.confusion(figure) == ("Accuracy 88.2%: 135 of 153 test images on the diagonal. The most "
                                             "common mistake: “9” taken for “4”, 12 times.")
    assert chart_words.confusion(charts.confusion_matrix(torch.eye(2, dtype=torch.long) * 5, ["a", "b"])) == (
        "Accuracy 100.0%: 10 of 10 test images on the diagonal.")
    frame, __ = chart_words.table(figure)  # its grid: a row per true class, a column per prediction
    assert list(frame.columns) == ["true", "3", "4", "9"] and frame.iloc[2].tolist() == ["9", 0, 12, 45]


def test_a_run_is_said_by_its_loss_over_the_epochs_and_its_last_accuracy():
    def epoch(n, loss, accuracy, validation):
        return EpochEvent(n, loss, accuracy, None, validation, 1000.0, 1.0)

    run = [epoch(1, 0.45, 0.86, 0.93), epoch(2, 0.12, 0.96, 0.97), epoch(3, 0.08, 0.975, 0.984)]
    assert chart_words.training(run) == ("Training loss fell from 0.45 to 0.08 over 3 epochs; validation accuracy "
                                         "98.4%.")
    assert chart_words.training(run[:1]) == "After 1 epoch: training loss 0.45; validation accuracy 93.0%."
    rising = [epoch(1, 0.5, 0.8, None), epoch(2, 7.0, 0.1, None)]
    assert chart_words.training(rising, "run #2") == ("run #2: Training loss rose from 0.5 to 7 over 2 epochs; "
                                                      "training accuracy 10.0%.")
    assert chart_words.training([]) == "No epoch has finished yet."


def test_the_table_holds_the_figures_numbers():
    figure = charts.lines({"training": [2.3, 0.9, 0.05], "test": [2.4, 1.1]}, range(1, 4), x_title="epoch",
                          y_title="loss")
    frame, formats = chart_words.table(figure)
    assert list(frame.columns) == ["epoch", "training", "test"]
    assert frame["training"].tolist() == [2.3, 0.9, 0.05] and frame["test"].tolist()[:2] == [2.4, 1.1]
    assert math.isnan(frame["test"].tolist()[2])  # no point there: an empty cell, shown as "—"
    bars, formats = chart_words.table(charts.layer_bars(["conv1", "fc"], [1e-2, 3e-6], "‖∂loss/∂W‖", log=True))
    assert bars.to_dict("list") == {"name": ["conv1", "fc"], "‖∂loss/∂W‖": [1e-2, 3e-6]}
    assert formats["‖∂loss/∂W‖"]["type_config"]["format"] == "%.2e"  # as the log axis writes them


def test_paths_and_points_are_said_and_tabulated_point_by_point():
    figure = charts.size_accuracy(["float32", "int8"], [120.0, 31.5], [0.981, 0.975])
    said = chart_words.describe(figure)
    assert "float32: gzip-compressed size (KB) 120, test accuracy 98.1%." in said
    contour = charts.race_contour([0.0, 1.0], [0.0, 1.0], [[1.0, 2.0], [3.0, 4.0]], [(1.0, 1.0)],
                                  {"SGD": [(0.0, 0.0), (0.5, 0.25), (1.0, 0.9)]}, (0.0, 1.0), (0.0, 1.0))
    said = chart_words.describe(contour)
    assert "minimum: (1, 1)." in said and "SGD goes from (0, 0) to (1, 0.9) in 2 steps." in said
    frame, __ = chart_words.table(contour)
    sgd = frame[frame["name"] == "SGD"].iloc[:, 1:].to_numpy(dtype=float)
    np.testing.assert_allclose(sgd, [[0, 0], [0.5, 0.25], [1, 0.9]], rtol=1e-6)  # the race's paths are float32


def plane(rule, resolution: int = 60) -> torch.Tensor:
    """rule(x₁, x₂) over the playground's plane, rows along x₂, as Session.surface lays it out."""
    axis = torch.linspace(-playground.EXTENT, playground.EXTENT, resolution)
    x1, x2 = torch.meshgrid(axis, axis, indexing="xy")
    return rule(x1, x2).float()


def signed(inside):
    """Two classes as Session.surface gives them: P(1) − P(0), here ±0.9."""
    return lambda x1, x2: torch.where(inside(x1, x2), 0.9, -0.9)


@pytest.mark.parametrize(("rule", "found"), [
    (lambda x1, x2: x1 * x1 + x2 * x2 < 9, [(1, "centre"), (0, "outside")]),
    (lambda x1, x2: x2 > 0, [(0, "bottom"), (1, "top")]),
    (lambda x1, x2: x1 > 0, [(0, "left"), (1, "right")]),
    (lambda x1, x2: x1 + x2 > 0, [(0, "bottom left"), (1, "top right")]),
    (lambda x1, x2: x1 * x2 > 0, [(0, "top left and bottom right"), (1, "top right and bottom left")]),
    (lambda x1, x2: x1 < 100, [(1, "everywhere")])])
def test_the_plane_is_read_by_ninths_into_the_shapes_of_its_classes(rule, found):
    labels = playground.predicted_classes(plane(signed(rule)), 2)
    assert [(label, shape) for label, shape, __ in playground.regions(labels)] == found


def test_ninths_no_class_holds_clearly_are_left_out():
    half = playground.majority_ninths(playground.predicted_classes(plane(signed(lambda x1, x2: x2 > 0)), 2))
    assert [half[n] for n in ("left", "centre", "right")] == [None, None, None]  # split through their middle
    assert half["top"] == 1 and half["bottom left"] == 0


def test_regions_that_make_no_known_shape_are_listed_by_their_ninths():
    three = plane(lambda x1, x2: torch.where(x2 > 2, 2, torch.where(x1 > 2, 1, 0)))  # 3 classes: the class index
    regions = playground.regions(playground.predicted_classes(three, 3))
    assert regions == [(1, None, ("bottom right", "right")), (2, "top", ("top left", "top", "top right")),
                       (0, "bottom left", ("bottom left", "bottom", "left", "centre"))]
    said = chart_words.decision_regions(three, "classification", 3)
    assert "the bottom right, right parts" in said and "(class 1)" in said


def test_the_picture_of_a_disc_says_which_class_has_the_centre_and_how_many_test_points_are_wrong():
    said = chart_words.decision_regions(plane(signed(lambda x1, x2: x1 * x1 + x2 * x2 < 9)), "classification",
                                        2, wrong=3, tested=100)
    colours = [chart_words.COLOUR_NAMES.get(charts.PLAYGROUND_COLOURS[k].lower()) for k in (0, 1)]
    inner = f"the centre {colours[1]} (class 1)" if colours[1] else "the centre in class 1's colour"
    outer = (f"everything around the centre {colours[0]} (class 0)" if colours[0] else
             "everything around the centre in class 0's colour")
    assert said == f"The network colours {inner} and {outer}. Test points misclassified: 3 of 100."


def test_a_regression_picture_says_where_the_output_is_highest_and_lowest():
    said = chart_words.decision_regions(plane(lambda x1, x2: x1 + x2), "regression", 1)
    assert said == "The network's output runs from -12 to 12: highest at the top right, lowest at the bottom left."
    undecided = chart_words.decision_regions(torch.zeros(60, 60).add(torch.arange(60) % 2), "classification", 3)
    assert undecided == "No region of the plane is clearly one class yet."


def test_every_page_draws_its_plotly_figures_with_their_words():
    """A figure drawn with st.plotly_chart directly would have no sentence and no table."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    bare = [f"{path.relative_to(repo)}:{number}" for path in [*repo.glob("app_pages/*.py"), *repo.glob("ui/*.py")]
            if path.name != "chart_words.py"
            for number, line in enumerate(path.read_text().splitlines(), start=1) if "plotly_chart(" in line]
    assert not bare, bare
