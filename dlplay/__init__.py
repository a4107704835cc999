"""dlplay: the PyTorch core of the deep-learning playground (no Streamlit here)."""
from .checkpoint import ModelCard, load_model, save_model
from .data import DATASETS, Dataset, DatasetUnavailable, ImageSet, load_dataset
from .device import DeviceInfo, configure_threads, pick_device
from .evaluate import Evaluation, evaluate
from .models import MODELS, build_model, summary
from .train import Trainer, build_optimizer

__all__ = ["DATASETS", "MODELS", "Dataset", "DatasetUnavailable", "DeviceInfo", "Evaluation", "ImageSet",
           "ModelCard", "Trainer", "build_model", "build_optimizer", "configure_threads", "evaluate",
           "load_dataset", "load_model", "pick_device", "save_model", "summary"]
