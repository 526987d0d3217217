import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

from workbench.training.metrics import classification_metrics, confusion

CLASSES = ["neu", "hap", "ang", "sad"]


def test_hand_computed_example():
    # true: 3 neu, 1 hap, 2 ang; predicted: neu right twice, hap right, ang right once
    y = ["neu", "neu", "neu", "hap", "ang", "ang"]
    p = ["neu", "neu", "ang", "hap", "ang", "neu"]
    m = classification_metrics(y, p, CLASSES)
    assert m["wa"] == pytest.approx(4 / 6)
    assert m["ua"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)  # sad absent: not averaged
    assert m["classes_present"] == 3
    # F1 per class: neu P=2/3 R=2/3 -> 2/3; hap 1; ang P=1/2 R=1/2 -> 1/2
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert m["weighted_f1"] == pytest.approx((3 * 2 / 3 + 1 * 1 + 2 * 1 / 2) / 6)


def test_matches_scikit_learn_on_random_predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 500)
    logits = rng.normal(size=(500, 4)) + np.eye(4)[y] * 1.5
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    p = probs.argmax(1)
    m = classification_metrics(y, p, CLASSES, probs=probs)
    assert m["wa"] == pytest.approx(accuracy_score(y, p))
    assert m["ua"] == pytest.approx(balanced_accuracy_score(y, p))
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert m["weighted_f1"] == pytest.approx(f1_score(y, p, average="weighted"))
    assert m["av_auc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr", average="macro"))


def test_confusion_counts_and_rows():
    y = ["neu", "neu", "hap", "sad"]
    p = ["neu", "hap", "hap", "neu"]
    c = confusion(y, p, CLASSES)
    assert c.loc["neu", "neu"] == 1 and c.loc["neu", "hap"] == 1 and c.loc["sad", "neu"] == 1
    assert c.values.sum() == 4
    r = confusion(y, p, CLASSES, normalise=True)
    assert r.loc["neu"].tolist() == [0.5, 0.5, 0.0, 0.0]
    assert r.loc["ang"].tolist() == [0.0, 0.0, 0.0, 0.0]  # no examples: a zero row, not NaN


def test_bad_labels_and_shapes():
    with pytest.raises(ValueError, match="'xxx' is not one of the classes"):
        classification_metrics(["xxx"], ["neu"], CLASSES)
    with pytest.raises(ValueError, match="probs has shape"):
        classification_metrics(["neu"], ["neu"], CLASSES, probs=np.ones((1, 3)))


def test_matches_scikit_learn_with_ties_and_a_class_never_predicted():
    from workbench.training.metrics import roc_auc

    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)  # class 3 absent from the truth
    probs = np.round(rng.dirichlet(np.ones(4), 300), 1)  # coarse: many tied scores
    p = np.where(rng.random(300) < 0.5, y, 0)  # classes 0-2 only, often wrong
    m = classification_metrics(y, p, CLASSES, probs=probs)
    present = [0, 1, 2]
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, labels=present, average="macro", zero_division=0))
    assert m["weighted_f1"] == pytest.approx(f1_score(y, p, labels=present, average="weighted", zero_division=0))
    expected = np.mean([roc_auc_score(y == c, probs[:, c]) for c in present])
    assert m["av_auc"] == pytest.approx(expected, abs=1e-12)
    assert roc_auc(np.array([True, False, True, False]), np.array([0.5, 0.5, 0.5, 0.5])) == 0.5


def test_training_metrics_do_not_import_scikit_learn():
    """scikit-learn costs every training process about 1.6 s of imports (docs/performance.md)."""
    import subprocess
    import sys

    code = "import sys, workbench.training.crossval; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
