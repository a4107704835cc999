"""dlplay: the PyTorch core of the deep-learning playground (no Streamlit here)."""
from dlplay.checkpoint import ModelCard, load_model, save_model
from dlplay.data import DATASETS, Dataset, DatasetUnavailable, ImageSet, load_dataset
from dlplay.device import DeviceInfo, configure_threads, pick_device
from dlplay.evaluate import Evaluation, evaluate
from dlplay.models import MODELS, build_model, summary
from dlplay.training.trainer import Trainer, build_optimizer

__all__ = ["DATASETS", "MODELS", "Dataset", "DatasetUnavailable", "DeviceInfo", "Evaluation", "ImageSet",
           "ModelCard", "Trainer", "build_model", "build_optimizer", "configure_threads", "evaluate",
           "load_dataset", "load_model", "pick_device", "save_model", "summary"]
