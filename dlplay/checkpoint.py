"""Save and load models as safetensors files whose metadata says how to rebuild and feed them."""
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save
from torch import nn

from dlplay.builder import LayerSpec
from dlplay.limits import limits
from dlplay.models import CUSTOM, MODELS, build_model

METADATA_KEY = "dlplay"
TRAINING_KEY = "dlplay.training"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelCard:
    """What a saved model is: architecture, classes, input shape and the normalisation baked into it."""

    architecture: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]  # (C, H, W); inputs are scaled to 0..1 before the model's Normalize layer
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset: str = ""
    test_accuracy: float | None = None
    stack: tuple[tuple[str, int], ...] = ()  # the builder's layers (kind, size) for architecture 'custom'


class ModelFileError(ValueError):
    """A model file is unreadable or does not match its declared architecture; the message is for the user."""


def save_model(path: str | Path, model: nn.Module, card: ModelCard) -> Path:
    """Write the model's weights and its card to a .safetensors file atomically; returns the path."""
    return write_atomically(path, model_bytes(model, card))


def training_state_bytes(model: nn.Module, card: ModelCard, tensors: dict, plain: dict) -> bytes:
    """A resumable training state as .safetensors bytes: the model, its card, extra tensors and JSON-ready data."""
    everything = {f"model.{k}": v for k, v in model_tensors(model).items()} | tensors
    return save(everything, metadata=card_metadata(card) | {TRAINING_KEY: json.dumps(plain)})


def write_atomically(path: str | Path, data: bytes) -> Path:
    """Write a file beside its final name, then move it there: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
    return path


def read_training_state(path: str | Path) -> tuple[dict, dict, dict, ModelCard]:
    """(model weights, other tensors, plain data, card) from a file of training_state_bytes()."""
    card = read_card(path)
    with safe_open(str(path), framework="pt") as f:
        plain = json.loads((f.metadata() or {}).get(TRAINING_KEY, "null"))
    if plain is None:
        raise ModelFileError(f"{Path(path).name} holds no training state to resume")
    tensors = load_file(str(path))
    weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    others = {k: v for k, v in tensors.items() if not k.startswith("model.")}
    return weights, others, plain, card


LFS_POINTER = b"version https://git-lfs.github.com/spec/"  # what a Git LFS pointer file starts with


def load_model_bytes(data: bytes, name: str) -> tuple[nn.Module, ModelCard]:
    """load_model for a file's contents, such as an upload; error messages name the user's file `name`."""
    if data.startswith(LFS_POINTER):
        raise ModelFileError(f"{name} is a Git LFS pointer, not the model itself: run `git lfs pull` to fetch the "
                             "real file")
    with tempfile.TemporaryDirectory(prefix="dlplay-model-") as folder:
        path = Path(folder) / "upload.safetensors"
        path.write_bytes(data)
        return load_model(path, name)


def model_tensors(model: nn.Module) -> dict:
    """The state dict as contiguous CPU tensors, as safetensors needs."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def card_metadata(card: ModelCard) -> dict[str, str]:
    """The safetensors metadata that carries a ModelCard."""
    return {METADATA_KEY: json.dumps({"format": FORMAT_VERSION, **asdict(card)})}


def model_bytes(model: nn.Module, card: ModelCard) -> bytes:
    """The .safetensors file contents, for a download button."""
    return save(model_tensors(model), metadata=card_metadata(card))


def read_card(path: str | Path, name: str | None = None) -> ModelCard:
    """The ModelCard stored in a dlplay .safetensors file (`name`: how error messages call the file)."""
    name = name or Path(path).name
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise ModelFileError(f"{name} is not a readable .safetensors file") from err
    if METADATA_KEY not in meta:
        raise ModelFileError(f"{name} has no dlplay metadata, so its architecture is unknown")
    try:
        fields = json.loads(meta[METADATA_KEY])
    except ValueError as err:
        raise ModelFileError(f"{name} has malformed dlplay metadata") from err
    return read_card_fields(fields, name)


def read_card_fields(fields: dict, name: str) -> ModelCard:
    """A ModelCard from its stored JSON fields (as card_metadata writes them); ModelFileError if malformed."""
    try:
        fields = {k: v for k, v in fields.items() if k != "format"}
        card = ModelCard(**fields)
        return ModelCard(**{**asdict(card), "class_names": tuple(card.class_names),
                            "input_shape": tuple(card.input_shape), "mean": tuple(card.mean), "std": tuple(card.std),
                            "stack": tuple((str(kind), int(size)) for kind, size in card.stack)})
    except (ValueError, TypeError, AttributeError) as err:
        raise ModelFileError(f"{name} has malformed dlplay metadata") from err


def model_cost(model: nn.Module, input_shape: tuple[int, int, int]) -> tuple[int, int]:
    """(parameters, values one image makes flow out of its layers), counted on a model on the meta device: shapes
    only, no memory."""
    flowing = 0

    def count(_module, _inputs, output) -> None:
        nonlocal flowing
        flowing += output.numel() if torch.is_tensor(output) else 0

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.empty(1, *input_shape, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return sum(p.numel() for p in model.parameters()), flowing


def card_parameters(card: ModelCard) -> int:
    """The parameters of the model `card` describes, counted on the meta device (no weights are made)."""
    return sum(p.numel() for p in _build(card, "meta").parameters())


def _build(card: ModelCard, device: str = "cpu") -> nn.Module:
    with torch.device(device):
        return build_model(card.architecture, card.input_shape, len(card.class_names), card.mean, card.std,
                           stack=[LayerSpec(kind, size) for kind, size in card.stack])


def _check_cost_and_weights(path: str | Path, card: ModelCard, name: str) -> None:
    """Refuse, before a byte of the model is allocated, a file whose metadata describes a model over the limits or
    whose stored tensors (names and shapes, read from its header) do not fit that model."""
    if card.architecture not in (*MODELS, CUSTOM):
        raise ModelFileError(f"unknown architecture {card.architecture!r}; dlplay knows {', '.join(MODELS)}")
    if not all(0 < n <= 1_000_000 for n in card.input_shape) or not 0 < len(card.class_names) <= 1_000_000:
        raise ModelFileError(f"{name} has malformed dlplay metadata")
    try:
        blueprint = _build(card, "meta")
        parameters, flowing = model_cost(blueprint, card.input_shape)
    except (ValueError, RuntimeError) as err:
        raise ModelFileError(f"the file describes a model that cannot be built: {err}") from err
    limit = limits()
    if parameters > limit.model_parameters:
        raise ModelFileError(f"{name} describes a model of {parameters:,} parameters; the limit is "
                             f"{limit.model_parameters:,}")
    if flowing > limit.model_activations:
        raise ModelFileError(f"{name} describes a model through which one image makes {flowing:,} values; the "
                             f"limit is {limit.model_activations:,}")
    with safe_open(str(path), framework="pt") as f:
        stored = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    expected = {key: tuple(value.shape) for key, value in blueprint.state_dict().items()}
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    wrong = [f"{k}: file {stored[k]} vs model {shape}" for k, shape in expected.items()
             if k in stored and stored[k] != shape]
    if missing or unexpected or wrong:
        parts = [f"missing {', '.join(missing)}" if missing else "",
                 f"unexpected {', '.join(unexpected)}" if unexpected else "",
                 f"shape mismatch {'; '.join(wrong)}" if wrong else ""]
        raise ModelFileError(f"weights do not fit {card.architecture}: " + "; ".join(p for p in parts if p))


def load_model(path: str | Path, name: str | None = None) -> tuple[nn.Module, ModelCard]:
    """Rebuild the architecture named in the file and load its weights (`name`: how error messages call the file).
    The model's cost and every tensor's name and shape are checked first, from the file's header alone."""
    name = name or Path(path).name
    card = read_card(path, name)
    _check_cost_and_weights(path, card, name)
    model = _build(card)
    model.load_state_dict(load_file(str(path)))
    model.eval()
    return model, card
