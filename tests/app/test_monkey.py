"""A seeded monkey: on every page, random widgets get random allowed values (edges included: empty multiselects,
the ends of every slider and number input), with a rerun after each action, and no action may raise.

On a failure the message gives the seed and the whole action log, to replay it. Buttons that start long in-page
computations are left to their own tests (see SLOW_BUTTONS), so that each page takes seconds.
"""
import os
import random

import pytest

from helpers import open_app_page

pytestmark = pytest.mark.slow  # 30 random actions on every page: minutes

SEED = int(os.environ.get("DLPLAY_MONKEY_SEED", 20261129))  # set it to explore other sequences
ACTIONS_PER_PAGE = 30
PAGES = ["home", "neuron", "activations", "optimizers", "playground", "convolution", "trainer", "classify",
         "after_training"]
# The activation race, FedAvg, distillation and the transfer lab train networks on the page itself; the export
# takes about 10 s (tests/app/test_after_training_page.py presses these).
SLOW_BUTTONS = {"Race", "Export and measure", "Compress and measure", "Run FedAvg",
                "Run the lab"}


def raw_options(widget) -> list | None:
    """The values behind a widget's displayed options (numbers parsed back, or indices), when they can be found."""
    shown = list(widget.options)
    for parse in (str, int, float):
        try:
            values = [parse(option) for option in shown]
            if [str(widget.format_func(v)) for v in values] == shown:
                return values
        except (ValueError, TypeError, KeyError, IndexError):
            continue
    try:
        if [str(widget.format_func(i)) for i in range(len(shown))] == shown:
            return list(range(len(shown)))
    except (ValueError, TypeError, KeyError, IndexError):
        pass
    return None


def number_choices(low, high, value, step) -> list:
    """The two ends, the value, and a few points in between."""
    low = value - 10 * step if low is None else low
    high = value + 10 * step if high is None else high
    middle = [low + (high - low) * f for f in (0.25, 0.5)]
    if isinstance(step, int) and isinstance(low, int):
        middle = [int(round(m)) for m in middle]
    return [low, high, value, *middle]


def actions(at, rng: random.Random) -> list[tuple[str, object, object]]:
    """Every (kind, widget, value) the monkey may do now."""
    found = []
    for kind in ("slider", "number_input", "select_slider", "selectbox", "multiselect", "radio", "checkbox",
                 "toggle", "button"):
        for widget in getattr(at, kind):
            if getattr(widget.proto, "disabled", False):
                continue
            if kind == "button":
                if widget.label not in SLOW_BUTTONS:
                    found.append((kind, widget, None))
            elif kind in ("slider", "number_input"):
                if not isinstance(widget.value, (list, tuple)):
                    step = widget.step or 1
                    found += [(kind, widget, v) for v in number_choices(widget.min, widget.max, widget.value, step)]
            elif kind == "selectbox":
                found += [(kind, widget, i) for i in range(len(widget.options))]
            elif kind in ("checkbox", "toggle"):
                found.append((kind, widget, not widget.value))
            else:
                values = raw_options(widget)
                if values is None:
                    continue
                if kind == "multiselect":
                    found += [(kind, widget, []), (kind, widget, values),
                              (kind, widget, rng.sample(values, k=rng.randint(1, len(values))))]
                else:
                    found += [(kind, widget, v) for v in values]
    return found


def apply(kind: str, widget, value) -> None:
    if kind == "button":
        widget.click()
    elif kind == "selectbox":
        widget.select_index(value)
    else:
        widget.set_value(value)


@pytest.mark.parametrize("page", PAGES)
def test_random_actions_never_raise(page):
    rng = random.Random(f"{SEED}-{page}")
    at = open_app_page(f"app_pages/{page}.py")
    log = []
    try:
        for _ in range(ACTIONS_PER_PAGE):
            choices = actions(at, rng)
            if not choices:
                break
            kind, widget, value = rng.choice(choices)
            log.append(f"{kind} {widget.label!r} <- {value!r}")
            apply(kind, widget, value)
            at.run()
            assert not at.exception, f"seed {SEED}, page {page}; actions:\n" + "\n".join(log) + \
                f"\n{at.exception[0].value}"
    finally:
        run = at.session_state["state.run"] if "state.run" in at.session_state else None
        if run is not None:
            run.stop()  # leave no training behind
