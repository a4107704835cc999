"""Which job starts next on which GPU, and how that GPU is named to the job's worker: pure functions of what the
server sees (its GPUs, the jobs running on them, its own CUDA_VISIBLE_DEVICES), so that they are tested without one.

Slots: runs that want a GPU share the GPUs (DLPLAY_SLOTS of them at once, one per GPU by default), each on the GPU
with the fewest runs, so that extra slots spread over the GPUs instead of piling onto GPU 0; runs on the CPU have
slots of their own (one per 2 cores), so a CPU run never waits for a GPU nor takes one's place."""
from collections.abc import Sequence


def visible_devices(value: str | None) -> list[str] | None:
    """The GPUs a CUDA_VISIBLE_DEVICES value lets a process see, in its order, as CUDA reads it: indices or UUIDs
    ('GPU-…', 'MIG-…'), up to the first entry that is neither (CUDA ignores it and everything after it). None:
    the variable is unset and every GPU is visible."""
    if value is None:
        return None
    seen = []
    for entry in value.split(","):
        entry = entry.strip()
        if not (entry.isdigit() or entry.startswith(("GPU-", "MIG-"))):
            break
        seen.append(entry)
    return seen


def worker_visible_devices(gpu: int | None, server_value: str | None) -> str:
    """CUDA_VISIBLE_DEVICES for a job's worker: the `gpu`-th GPU the server sees (an index into the server's own
    visible GPUs), named as the server's setting names it, since a worker counts from the machine's GPUs, not the
    server's; "" (no GPU) for a job without one."""
    if gpu is None:
        return ""
    seen = visible_devices(server_value)
    if seen is None:
        return str(gpu)
    if not 0 <= gpu < len(seen):
        raise ValueError(f"GPU {gpu} is not among the {len(seen)} GPU(s) this server sees ({server_value!r})")
    return seen[gpu]


def next_start(wants_gpu: Sequence[bool], running: Sequence[int | None], gpus: int, gpu_slots: int,
               cpu_slots: int) -> tuple[int, int | None] | None:
    """The queued job that starts now and its GPU (None: the CPU), or None while none fits.

    `wants_gpu`: per queued job in arrival order, whether it asks for an accelerator ('auto' or 'cuda'); `running`:
    the GPU of each running job (None: on the CPU); `gpus`: the GPUs the server sees. Without GPUs every job runs
    on the CPU, `cpu_slots` at once, in arrival order. With GPUs, GPU runs take `gpu_slots` slots, each on the
    least busy GPU (the lowest index on a tie), and CPU runs `cpu_slots` slots of their own; the first queued job
    whose kind has a free slot starts (a CPU run does not wait behind runs waiting for a GPU)."""
    if not gpus:
        return (0, None) if wants_gpu and len(running) < cpu_slots else None
    on_gpus = [g for g in running if g is not None]
    on_cpu = len(running) - len(on_gpus)
    for index, wants in enumerate(wants_gpu):
        if wants and len(on_gpus) < gpu_slots:
            return index, min(range(gpus), key=lambda g: (on_gpus.count(g), g))
        if not wants and on_cpu < cpu_slots:
            return index, None
    return None
