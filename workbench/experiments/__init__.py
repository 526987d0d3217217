"""Experiments: orchestration above scoring. Plan the runs a question needs, reuse the finished
ones and train the rest (:func:`~workbench.experiments.runs.ensure_runs`, the one "train if
missing" of the workbench), then hand the runs to :mod:`workbench.evaluation` to score.

- :mod:`workbench.experiments.runs`: ``ensure_runs``, ``train_missing``, ``train_for_evaluation``,
  ``counterpart``, ``choose_run``;
- :mod:`workbench.experiments.reproduce`: the reproduction ledger (plan, reproduce, write);
- :mod:`workbench.experiments.leakage`: Pepino et al.'s fold-leakage experiment.

``evaluation/`` below only scores runs that exist and ``viz/`` above only draws them: neither
imports a training entry point (``tests/test_layering.py`` checks it).
"""
