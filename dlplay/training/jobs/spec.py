"""What defines a training job: the run's settings, its data, and where its files go; all of it plain data."""
import re
import uuid
from dataclasses import asdict, dataclass, replace
from enum import StrEnum

from dlplay.after_training.transfer import FREEZE
from dlplay.augment import LIGHT, Augmentation
from dlplay.builder import LayerSpec
from dlplay.data import Dataset, ImageSet, shrink_classes, stratified_split

REMEDIES = ("none", "weighted loss", "weighted sampler")
RUN_ID = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run, as chosen on the trainer page or in a script."""

    model: str = "small-cnn"
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    batch_size: int = 64
    epochs: int = 3
    seed: int = 0
    device: str = "auto"
    mixed_precision: bool = True  # float16 on CUDA, bfloat16 on CPUs with native bf16 (see device.pick_device)
    augmentation: Augmentation = LIGHT
    label_smoothing: float = 0.0  # the loss's target: 1 − ε on the true class, ε spread over all classes
    train_fraction: float = 1.0  # share of the training images used ("why does deep learning need much data")
    validation_fraction: float = 0.1  # held out of the training images to draw the validation curve
    shrunk_classes: tuple[int, ...] = ()  # the class-imbalance lab: these classes keep only `shrunk_keep`
    shrunk_keep: float = 0.1
    remedy: str = "none"  # for imbalance: "none", "weighted loss" or "weighted sampler"
    dropout: bool = True  # off: every dropout layer's p is set to 0
    stack: tuple[LayerSpec, ...] = ()  # the builder's layers, for model 'custom'
    start_from: str = ""  # transfer learning: a trained model's .safetensors file (on the worker's machine)...
    freeze: str = "none"  # ...and what of it stays fixed (after_training.transfer.FREEZE); the head is always new

    def __post_init__(self) -> None:
        if self.remedy not in REMEDIES:
            raise ValueError(f"unknown remedy {self.remedy!r}; choose one of: {', '.join(REMEDIES)}")
        if self.freeze not in FREEZE:
            raise ValueError(f"unknown freeze {self.freeze!r}; choose one of: {', '.join(FREEZE)}")

    def to_plain(self) -> dict:
        """This config as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_plain(cls, plain: dict) -> "RunConfig":
        """The RunConfig that to_plain() described."""
        return cls(**{**plain, "augmentation": Augmentation(**plain["augmentation"]),
                      "shrunk_classes": tuple(plain["shrunk_classes"]),
                      "stack": tuple(LayerSpec(**spec) for spec in plain["stack"])})


class RunStatus(StrEnum):
    """Where a run is in its life; the last four are final."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    FAILED = "failed"
    CRASHED = "crashed"  # the worker process died: resumable from its last checkpoint

    @property
    def active(self) -> bool:
        """Queued, running or paused."""
        return self in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED)


@dataclass(frozen=True)
class DataRef:
    """Which dataset a job trains on: a registered one by name, or a stored file (a user's zip) by its key."""

    name: str
    file_key: str | None = None  # the dataset file in the run store, for datasets that are not registered


@dataclass(frozen=True)
class JobSpec:
    """A job as sent to a worker: the run's id and config, its data, and whether to resume from its checkpoint."""

    run_id: str
    config: RunConfig
    data: DataRef
    resume: bool = False
    threads: int = 1  # CPU threads the worker may use
    gpu: int | None = None  # the GPU it may use, an index into the server's visible GPUs (None: no CUDA GPU)
    pause_at_step: int | None = None  # the run pauses by itself once this many steps are done (None: it does not)

    def to_plain(self) -> dict:
        """JSON-ready data for the worker."""
        return {"run_id": self.run_id, "config": self.config.to_plain(), "data": asdict(self.data),
                "resume": self.resume, "threads": self.threads, "gpu": self.gpu, "pause_at_step": self.pause_at_step}

    @classmethod
    def from_plain(cls, plain: dict) -> "JobSpec":
        """The JobSpec that to_plain() described."""
        return cls(plain["run_id"], RunConfig.from_plain(plain["config"]), DataRef(**plain["data"]), plain["resume"],
                   plain["threads"], plain["gpu"], plain.get("pause_at_step"))

    def with_threads(self, threads: int, gpu: int | None = None) -> "JobSpec":
        """The same job with its share of the machine."""
        return replace(self, threads=threads, gpu=gpu)


def new_run_id() -> str:
    """A random 12-hex-digit run id (it names the run's folder and goes in the page's URL)."""
    return uuid.uuid4().hex[:12]


def check_run_id(run_id: str) -> str:
    """The id itself if well formed; a malformed id (say, from an edited URL) raises ValueError."""
    if not RUN_ID.fullmatch(run_id or ""):
        raise ValueError("not a run id")
    return run_id


def take_fraction(data: ImageSet, fraction: float, seed: int) -> ImageSet:
    """A seeded, class-stratified share of the images (all of them for fraction >= 1)."""
    if fraction >= 1:
        return data
    _, kept = stratified_split(data, fraction, seed)
    return kept


def steps_per_epoch(config: RunConfig, dataset: Dataset) -> int:
    """Optimizer steps in one epoch of this run (its last batch may be smaller than the others)."""
    train, _ = training_split(config, dataset)
    return -(-len(train) // config.batch_size)


def training_split(config: RunConfig, dataset: Dataset) -> tuple[ImageSet, ImageSet | None]:
    """The (train, validation) images a run uses: the data-size and imbalance labs applied, then a seeded split."""
    train = take_fraction(dataset.train, config.train_fraction, config.seed)
    if config.shrunk_classes:
        train = shrink_classes(train, config.shrunk_classes, config.shrunk_keep, config.seed)
    if config.validation_fraction > 0:
        train, val = stratified_split(train, config.validation_fraction, config.seed)
        return train, val if len(val) else None  # too few images to hold any back
    return train, None
