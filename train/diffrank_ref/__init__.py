"""diffrank_ref: the PyTorch reference of diffrank's encoder (same model directory as C++)."""
from .model import DiffrankConfig, DiffrankModel, load_model_dir, save_model_dir  # noqa: F401
