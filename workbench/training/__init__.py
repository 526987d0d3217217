"""Training: datasets and batches, paper presets, the trainer and cross-validation runs."""

from workbench.training.crossval import CrossValError, load_trained, run_crossval
from workbench.training.data import BucketBatchSampler, SERDataset, collate
from workbench.training.presets import FeatureSpec, TrainPreset, get_preset
from workbench.training.results import read_predictions, read_results
from workbench.training.trainer import TrainingError, predict, train_model

__all__ = ["BucketBatchSampler", "CrossValError", "FeatureSpec", "SERDataset", "TrainPreset", "TrainingError",
           "collate", "get_preset", "load_trained", "predict", "read_predictions", "read_results", "run_crossval",
           "train_model"]
