"""The charts' colours stay apart for colour-blind eyes: each colour is passed through colorspacious's simulation of
deuteranopia, protanopia and tritanopia (Machado, Oliveira & Fernandes 2009, severity 100: the full deficiency),
and every pair that must be told apart is compared in CAM02-UCS (Luo, Cui & Li 2006), the colour space whose
distances are made to follow perceived differences.

The threshold: in CAM02-UCS a difference ΔE′ of about 1 is just noticeable between two large patches side by side;
the colours here mark small things (a 7-pixel point, a 1-pixel line, a legend swatch) seen apart from each other,
and the smaller a mark the larger the difference it needs to be seen at all (Stone, Szafir & Setlur 2014, "An
engineering model for color difference as a function of size"). We ask for ten times the large-patch threshold,
a difference that reads at a glance: ΔE′ ≥ 10. Okabe and Ito's eight colours, made for colour-blind readers,
clear it (their closest pair: orange and reddish purple, 11 apart for a tritanope), and so do they with TensorFlow
Playground's orange and blue in their place, as the charts draw them (closest: that blue and bluish green, 10.1
apart for a tritanope, one person in ten thousand; 13 or more for a protanope or deuteranope); the Tableau colours
the charts had before do not (red and green 5 apart for a deuteranope, green and orange 2 for a protanope)."""
import itertools

import colorspacious
import numpy as np
import plotly.colors
import plotly.graph_objects as go
import pytest
import torch

from ui import charts

VISIONS = {"normal vision": None, "deuteranopia": "deuteranomaly", "protanopia": "protanomaly",
           "tritanopia": "tritanomaly"}
LEAST = 10.0  # ΔE′ in CAM02-UCS: see the module's docstring


def seen(rgb: np.ndarray, vision: str) -> np.ndarray:
    """sRGB colours (0..1) as someone with `vision` sees them, clipped back into the screen's gamut."""
    if VISIONS[vision] is None:
        return rgb
    space = {"name": "sRGB1+CVD", "cvd_type": VISIONS[vision], "severity": 100}
    return np.clip(colorspacious.cspace_convert(rgb, space, "sRGB1"), 0, 1)


def rgb(colour) -> np.ndarray:
    """'#rrggbb', 'rgb(r, g, b)' or an (r, g, b) of 0..255 as sRGB from 0 to 1."""
    if isinstance(colour, str):
        colour = charts.hex_rgb(colour) if colour.startswith("#") else plotly.colors.unlabel_rgb(colour)
    return np.asarray(colour, dtype=float) / 255


def too_close(colours: dict[str, object], pairs, vision: str) -> list[str]:
    """The pairs (names into `colours`) whose difference, as seen with `vision`, is under LEAST."""
    close = []
    for a, b in pairs:
        difference = colorspacious.deltaE(seen(rgb(colours[a]), vision), seen(rgb(colours[b]), vision),
                                          input_space="sRGB1", uniform_space="CAM02-UCS")
        if difference < LEAST:
            close.append(f"{a} {colours[a]} and {b} {colours[b]}: ΔE′ {difference:.1f}")
    return close


def categories() -> dict[str, dict[str, object]]:
    """Each set of colours told apart by colour alone, by its use, as the charts draw them."""
    colorway = go.Figure().layout.template.layout.colorway  # what every chart's series take in turn
    picture = charts.pixel_grid(np.zeros((4, 4)), cells=[(0, 0)], frame=(1, 1, 3, 3))
    padding = charts.padding_grid(3, 1, 1, [0, 1], [0, 2]).data[0].colorscale
    return {
        "series": {f"series {i}": c for i, c in enumerate(colorway)},
        "classes": {f"class {k}": charts.PLAYGROUND_COLOURS[k] for k in range(len(charts.PALETTE))},
        "marks on a picture": {"outlined cells": picture.layout.shapes[0].line.color,
                               "frame": picture.layout.shapes[1].line.color},
        "padding and input": {"padding": padding[0][1], "input": padding[-1][1]},
    }


def scales() -> dict[str, dict[str, object]]:
    """Each scale of signed values, as its negative end, zero and positive end are drawn."""
    ends = np.array([-1.0, 0.0, 1.0])
    signed = charts.pixel_grid(np.array([[-1.0, 1.0]]), signed=True).data[0].colorscale
    two_classes = charts._surface_scale("classification", 2, False, ends, [])[1]
    regression = charts._surface_scale("regression", 1, False, ends, [])[1]
    named = lambda colours: dict(zip(("negative", "zero", "positive"), colours, strict=True))  # noqa: E731
    return {
        "signed maps": named(charts._colours(ends, signed, -1, 1)),
        "playground, two classes": named(charts._colours(ends, two_classes, -1, 1)),
        "playground, regression": named(charts._colours(ends, regression, -1, 1)),
        "playground, node pictures": named(charts._signed_rgb(ends)),
        "playground, weights": named(charts._link_colour(w, 1.0) for w in ends),
    }


@pytest.mark.parametrize("vision", VISIONS)
@pytest.mark.parametrize("use", ["series", "classes", "marks on a picture", "padding and input"])
def test_every_two_categories_stay_apart(use, vision):
    colours = categories()[use]
    assert len(colours) >= 2
    assert not too_close(colours, itertools.combinations(colours, 2), vision)


@pytest.mark.parametrize("vision", VISIONS)
@pytest.mark.parametrize("scale", ["signed maps", "playground, two classes", "playground, regression",
                                   "playground, node pictures", "playground, weights"])
def test_a_diverging_scale_keeps_its_ends_and_its_middle_apart(scale, vision):
    colours = scales()[scale]
    assert not too_close(colours, [("negative", "positive"), ("negative", "zero"), ("zero", "positive")], vision)


def test_the_test_sees_red_and_green_run_together_for_a_deuteranope():
    """The simulation itself: pure red and green, far apart for most eyes, close for a deuteranope."""
    colours = {"red": "#d62728", "green": "#2ca02c"}
    assert not too_close(colours, [("red", "green")], "normal vision")
    assert too_close(colours, [("red", "green")], "deuteranopia")


def drawn(fig: go.Figure) -> list[tuple[str, str]]:
    """Each trace's (colour, second cue): its own colour or the template's in turn, and its symbol or hatch."""
    colorway = fig.layout.template.layout.colorway
    shown = []
    for i, trace in enumerate(fig.data):
        colour = trace.marker.color if trace.type == "bar" else (trace.line.color or trace.marker.color
                                                                  or colorway[i % len(colorway)])
        cue = (trace.marker.pattern.shape or "") if trace.type == "bar" else (
            trace.marker.symbol if "markers" in (trace.mode or "") else "")
        shown.append((colour, cue))
    return shown


def test_past_eight_categories_those_of_one_colour_differ_in_a_second_cue():
    names = [str(digit) for digit in range(10)]
    figures = {"digits in every client": charts.client_classes(np.ones((3, 10), dtype=int), names),
               "ten lines": charts.lines({name: [1.0, 2.0] for name in names}),
               "ten forms of a model": charts.size_accuracy(names, [1.0] * 10, [0.5] * 10)}
    for what, fig in figures.items():
        shown = drawn(fig)
        assert len(shown) == 10 and len(set(shown)) == 10, what  # no two alike
        assert len({colour for colour, __ in shown}) == len(charts.PALETTE), what  # eight colours, then again
    # the playground's points of ten classes: class k and k + 8 share a colour, not a shape
    points = (torch.zeros(10, 2), torch.arange(10))
    marker = charts.playground_surface([-6.0, 6.0], torch.zeros(2, 2), points, None, "classification", 10,
                                       False).data[1].marker
    assert len(set(zip(marker.color, marker.symbol, strict=True))) == 10
    assert marker.color[0] == marker.color[8] and marker.symbol[0] != marker.symbol[8]
