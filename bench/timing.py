"""Timing shared by the benches, standard library only (the Keras worker imports it from TensorFlow's venv)."""
import statistics
import time


def median_seconds(call, calls: int = 50) -> float:
    """The median wall time of `calls` calls of `call` (after two warm-up calls)."""
    call(), call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
