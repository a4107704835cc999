"""Record the playground runs whose verdicts tests/unit/lessons/test_playground_verdicts.py checks, as JSON traces in
tests/unit/lessons/traces/ (run once; the output is committed).

Training differs bit for bit between CPUs, so the tests read these recorded numbers rather than train: a verdict's
test then means the same on every machine. Rebuild with `python scripts/record_playground_traces.py`.
"""
import json
from dataclasses import asdict
from pathlib import Path

from dlplay.lessons.playground import NetworkConfig, Session, make_points

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "unit" / "lessons" / "traces"
SPIRAL = dict(hidden=(16, 16), optimizer="Adam", lr=0.03)
# name -> (make_points' arguments, the network, epochs); issue 25 describes the first four
SCENARIOS = {
    "spiral-relu": (("spiral", 200, 0.1, 0.1, 0), NetworkConfig(activations=("ReLU", "ReLU"), **SPIRAL), 100),
    "spiral-tanh": (("spiral", 200, 0.2, 0.1, 3), NetworkConfig(activations=("tanh", "tanh"), **SPIRAL), 100),
    "spiral-test-rising": (("spiral", 200, 0.3, 0.5, 2), NetworkConfig(hidden=(8, 8), optimizer="Adam", lr=0.03), 60),
    "circle-l1": (("circle", 300, 0.1, 0.5, 0), NetworkConfig(regularizer="L1", reg_rate=0.03), 60),
    "xor-dead": (("XOR", 300, 0.1, 0.5, 0), NetworkConfig(hidden=(8, 8), activations=("ReLU", "ReLU"), lr=1.0), 60),
    "circle-learning": (("circle", 300, 0.1, 0.5, 0), NetworkConfig(), 100),
}


def rounded(values: list[float]) -> list[float]:
    """Six significant digits: small files, and far finer than any threshold of the verdict."""
    return [float(f"{v:.6g}") for v in values]


def record(points: tuple, config: NetworkConfig, epochs: int) -> dict:
    """Train the scenario and return how it was made and its trace (Trace's fields), as JSON-ready data."""
    session = Session(make_points(*points), config, seed=0)
    session.train(epochs)
    trace = asdict(session.trace())
    for name in ("train_losses", "test_losses", "weight_sizes"):
        trace[name] = rounded(trace[name])
    return {"points": list(points), "config": asdict(config), "epochs": epochs, "trace": trace,
            "test_accuracies": rounded(session.test_accuracies)}


def as_json(value: dict, indent: str = "") -> str:
    """`value` as JSON with one key a line (nested dicts indented), each list on its line."""
    lines = [f'{indent} "{key}": ' + (as_json(item, indent + " ") if isinstance(item, dict) else
                                      json.dumps(item, ensure_ascii=False)) for key, item in value.items()]
    return "{\n" + ",\n".join(lines) + f"\n{indent}}}"


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, scenario in SCENARIOS.items():
        (OUT / f"{name}.json").write_text(as_json(record(*scenario)) + "\n")
        print(name)
