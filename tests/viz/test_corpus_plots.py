"""Notebook 01's headline numbers."""

from workbench.testing import make_manifest
from workbench.viz.corpus_plots import describe


def test_describe_prints_counts_as_integers_and_hours_as_a_fraction():
    manifest = make_manifest(sessions=2, seed=0)
    numbers = describe(manifest)
    assert numbers["utterances"] == len(manifest) and isinstance(numbers["utterances"], int)
    text = numbers.to_string()
    assert text.splitlines()[0].split() == ["utterances", str(len(manifest))]
    assert ".000" not in text and isinstance(numbers["hours"], float)
