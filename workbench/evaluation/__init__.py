"""Evaluation: metrics, aggregation over folds and seeds, significance, paper comparisons."""

from workbench.evaluation.aggregate import (
    aggregate,
    bootstrap_ci,
    model_table,
    paired_bootstrap,
    paired_test,
    per_class_recall,
    pooled_confusion,
)
from workbench.evaluation.leakage_experiment import leakage_long, leakage_table
from workbench.evaluation.papers import comparison_table, paper_table
from workbench.training.metrics import classification_metrics, confusion

__all__ = [
    "aggregate",
    "bootstrap_ci",
    "classification_metrics",
    "comparison_table",
    "confusion",
    "leakage_long",
    "leakage_table",
    "model_table",
    "paired_bootstrap",
    "paired_test",
    "paper_table",
    "per_class_recall",
    "pooled_confusion",
]
