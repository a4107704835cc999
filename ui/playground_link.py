"""The network playground's whole configuration in a URL query string and back: a link opens the same playground.
Values that are missing or not allowed are left out, so a hand-edited link never breaks the page."""
from dlplay.playground import ACTIVATIONS, DATASETS, FEATURES, MAX_HIDDEN_LAYERS, MAX_NEURONS, OPTIMIZERS, REGULARIZERS

FEATURE_IDS = dict(zip(FEATURES, ("x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2"), strict=True))
LEARNING_RATES = (0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.5)
REG_RATES = (0.0, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1)
PREFIX = "playground."


def to_query(state: dict) -> dict[str, str]:
    """The page's widget values (keys without the 'playground.' prefix) as short query parameters."""
    layers = state["layers"]
    return {
        "data": state["data"], "noise": str(round(state["noise"])), "points": str(state["points"]),
        "share": str(state["train_share"]), "seed": str(state["seed"]),
        "features": ",".join(FEATURE_IDS[f] for f in state["features"]),
        "net": ",".join(f"{state[f'neurons.{i}']}-{state[f'activation.{i}']}" for i in range(layers)) or "none",
        "opt": state["optimizer"], "lr": repr(state["lr"]), "batch": str(state["batch"]),
        "dropout": repr(state["dropout"]), "reg": state["regularizer"], "rate": repr(state["reg_rate"]),
    }


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


def from_query(query: dict[str, str]) -> dict:
    """Widget values (with the 'playground.' prefix) for the allowed query parameters present."""
    ids = {v: k for k, v in FEATURE_IDS.items()}
    found = {
        "data": query.get("data") if query.get("data") in DATASETS else None,
        "noise": _int(query.get("noise", ""), 0, 50, 5),
        "points": _int(query.get("points", ""), 50, 1000, 50),
        "train_share": _int(query.get("share", ""), 10, 90, 10),
        "seed": _int(query.get("seed", ""), 0, 10_000),
        "optimizer": query.get("opt") if query.get("opt") in OPTIMIZERS else None,
        "lr": _choice(query.get("lr", ""), LEARNING_RATES),
        "batch": _int(query.get("batch", ""), 1, 30),
        "dropout": _choice(query.get("dropout", ""), DROPOUTS),
        "regularizer": query.get("reg") if query.get("reg") in REGULARIZERS else None,
        "reg_rate": _choice(query.get("rate", ""), REG_RATES),
    }
    if "features" in query:
        chosen = [ids[f] for f in query["features"].split(",") if f in ids]
        found["features"] = chosen
    if "net" in query:
        layers = [] if query["net"] == "none" else [part.split("-", 1) for part in query["net"].split(",")]
        if len(layers) <= MAX_HIDDEN_LAYERS and all(len(p) == 2 and _int(p[0], 1, MAX_NEURONS) and p[1] in ACTIVATIONS
                                                    for p in layers):
            found["layers"] = len(layers)
            for i, (size, activation) in enumerate(layers):
                found[f"neurons.{i}"], found[f"activation.{i}"] = int(size), activation
    return {PREFIX + key: value for key, value in found.items() if value is not None}
