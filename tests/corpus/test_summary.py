import numpy as np
import pytest

from workbench.corpus.manifest import Manifest, Utterance
from workbench.corpus.summary import counts, evaluator_agreement, fleiss_kappa, repeated_transcripts


def _u(i, label, votes, text="hello there", session="Ses01", script=None):
    return Utterance(
        id=f"u{i}", corpus="t", session=session, dialog="d", speaker=f"{session}F", gender="F",
        kind="scripted" if script else "improvised", script=script, audio_path="x.wav", start=0.0,
        duration=1.0, text=text, label=label, label_votes=votes,
    )


def test_fleiss_kappa_perfect_and_chance():
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)
    # every item split 2/1 the same way: observed agreement 1/3, expected (from p=(2/3,1/3)) 5/9
    assert fleiss_kappa(np.array([[2, 1]] * 4)) == pytest.approx((1 / 3 - 5 / 9) / (1 - 5 / 9))
    with pytest.raises(ValueError):
        fleiss_kappa(np.array([[2, 0], [1, 0]]))


def test_evaluator_agreement_ignores_self_ratings():
    m = Manifest([
        _u(0, "neu", {"C-E1": ["neu"], "C-E2": ["neu"], "C-E3": ["neu"], "C-F1": ["ang"]}),
        _u(1, "ang", {"C-E1": ["ang", "fru"], "C-E2": ["ang"], "C-E3": ["neu"]}),
        _u(2, "xxx", {"C-E1": ["sad"], "C-E2": ["neu"], "C-E3": ["ang"]}),
    ])
    a = evaluator_agreement(m)
    assert a["evaluators"] == 3 and a["items"] == 3
    assert a["unanimous_share"] == pytest.approx(1 / 3)
    assert a["majority_share"] == pytest.approx(2 / 3)
    mat = np.array([[0, 3, 0], [2, 1, 0], [1, 1, 1]])  # columns ang, neu, sad
    assert a["fleiss_kappa"] == pytest.approx(fleiss_kappa(mat))


def test_counts_and_repeats():
    m = Manifest([
        _u(0, "neu", {}, "Hi, there!", "Ses01", "script01"),
        _u(1, "ang", {}, "hi there", "Ses02", "script01"),
        _u(2, "neu", {}, "hi there [LAUGHTER]", "Ses02", "script01"),
        _u(3, "sad", {}, "something else", "Ses01"),
    ])
    c = counts(m, "session")
    assert c.loc["Ses02", "neu"] == 1 and c.loc["total", "total"] == 4
    r = repeated_transcripts(m)
    assert len(r) == 1
    row = r.iloc[0]
    assert (row["text"], row["count"], row["sessions"], row["scripts"]) == ("hi there", 3, 2, "script01")
    assert row["labels"] == {"neu": 2, "ang": 1}
