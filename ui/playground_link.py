"""The network playground's whole configuration in a URL query string and back: a link opens the same playground.
Values that are missing or not allowed are left out, so a hand-edited link never breaks the page."""
from dlplay.lessons.playground import (
    ACTIVATIONS,
    DATASETS,
    FEATURES,
    MAX_HIDDEN_LAYERS,
    MAX_NEURONS,
    OPTIMIZERS,
    REGULARIZERS,
)

FEATURE_IDS = dict(zip(FEATURES, ("x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2"), strict=True))
LEARNING_RATES = (0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.5)
REG_RATES = (0.0, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1)
PREFIX = "playground."  # network A's and the data's widget keys
PREFIX_B = "playground_b."  # network B's (compare mode)
COMPARE = "playground_run.compare"  # the compare toggle's key
B = "b."  # network B's parameters in the query string


def _network_query(state: dict) -> dict[str, str]:
    """One network's widget values as query parameters."""
    layers = state["layers"]
    return {
        "features": ",".join(FEATURE_IDS[f] for f in state["features"]),
        "net": ",".join(f"{state[f'neurons.{i}']}-{state[f'activation.{i}']}" for i in range(layers)) or "none",
        "opt": state["optimizer"], "lr": repr(state["lr"]), "batch": str(state["batch"]),
        "dropout": repr(state["dropout"]), "reg": state["regularizer"], "rate": repr(state["reg_rate"]),
    }


def to_query(state: dict, state_b: dict | None = None) -> dict[str, str]:
    """The page's widget values (keys without their prefix) as short query parameters; network B's, when it is
    compared, under 'b.'."""
    query = {"data": state["data"], "noise": str(round(state["noise"])), "points": str(state["points"]),
             "share": str(state["train_share"]), "seed": str(state["seed"]), **_network_query(state)}
    return query | ({B + k: v for k, v in _network_query(state_b).items()} if state_b is not None else {})


def _int(text: str, low: int, high: int, step: int = 1) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if low <= value <= high and (value - low) % step == 0 else None


def _choice(text: str, allowed):
    try:
        value = type(next(iter(allowed)))(text)
    except ValueError:
        return None
    return value if value in allowed else None


def _network_from(query: dict[str, str]) -> dict:
    """One network's allowed settings found in `query` (keys without a prefix)."""
    ids = {v: k for k, v in FEATURE_IDS.items()}
    found = {
        "optimizer": query.get("opt") if query.get("opt") in OPTIMIZERS else None,
        "lr": _choice(query.get("lr", ""), LEARNING_RATES),
        "batch": _int(query.get("batch", ""), 1, 30),
        "dropout": _choice(query.get("dropout", ""), DROPOUTS),
        "regularizer": query.get("reg") if query.get("reg") in REGULARIZERS else None,
        "reg_rate": _choice(query.get("rate", ""), REG_RATES),
    }
    if "features" in query:
        found["features"] = [ids[f] for f in query["features"].split(",") if f in ids]
    if "net" in query:
        layers = [] if query["net"] == "none" else [part.split("-", 1) for part in query["net"].split(",")]
        if len(layers) <= MAX_HIDDEN_LAYERS and all(len(p) == 2 and _int(p[0], 1, MAX_NEURONS) and p[1] in ACTIVATIONS
                                                    for p in layers):
            found["layers"] = len(layers)
            for i, (size, activation) in enumerate(layers):
                found[f"neurons.{i}"], found[f"activation.{i}"] = int(size), activation
    return found


def from_query(query: dict[str, str]) -> dict:
    """Widget values (with their prefixes) for the allowed query parameters present; parameters of network B turn
    the comparison on."""
    found = {
        "data": query.get("data") if query.get("data") in DATASETS else None,
        "noise": _int(query.get("noise", ""), 0, 50, 5),
        "points": _int(query.get("points", ""), 50, 1000, 50),
        "train_share": _int(query.get("share", ""), 10, 90, 10),
        "seed": _int(query.get("seed", ""), 0, 10_000),
        **_network_from(query),
    }
    values = {PREFIX + key: value for key, value in found.items() if value is not None}
    if any(key.startswith(B) for key in query):
        network_b = _network_from({k.removeprefix(B): v for k, v in query.items() if k.startswith(B)})
        values |= {PREFIX_B + key: value for key, value in network_b.items() if value is not None} | {COMPARE: True}
    return values
