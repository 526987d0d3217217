"""Training: a fold's inputs, datasets and batches, training recipes (paper, demo, smoke), the
trainer, cross-validation runs and reloading them."""

from workbench.training.crossval import CrossValError, run_crossval
from workbench.training.data import BucketBatchSampler, SERDataset, collate
from workbench.training.recipes import FeatureSpec, Recipe, get_recipe
from workbench.training.results import read_predictions, read_results
from workbench.training.runs import load_run, load_trained
from workbench.training.spec import BackendOptions, CorpusOptions, RunSpec
from workbench.training.trainer import TrainingError, predict, train_model

__all__ = ["BackendOptions", "BucketBatchSampler", "CorpusOptions", "CrossValError", "FeatureSpec", "RunSpec",
           "SERDataset", "Recipe", "TrainingError", "collate", "get_recipe", "load_run", "load_trained",
           "predict", "read_predictions", "read_results", "run_crossval", "train_model"]
