"""The claims as data: ids, declared variants, the slope weights of a trend claim."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.evaluation.claims import CLAIMS, ClaimError, _slope_weights, get_claim


def test_unknown_claims_suggest_close_ids():
    with pytest.raises(ClaimError, match=r"unknown claim 'xu2019.alignment_beats_concatt'; did you mean"):
        get_claim("xu2019.alignment_beats_concatt")


def test_every_claim_names_declared_variants_of_registered_models():
    from workbench.models import get_card

    assert len({c.id for c in CLAIMS}) == len(CLAIMS)
    for c in CLAIMS:
        for _, cond in c.terms:
            card = get_card(cond.model)
            assert not cond.variant or cond.variant in card.variants, (c.id, cond)
            assert cond.text_source in ("oracle", "asr")
        assert c.metric in ("ua", "wa", "av_auc")
        assert c.relation in ("beats", "worse", "similar")


def test_slope_weights_give_numpys_least_squares_slope():
    xs, ys = (1, 3, 5, 7), np.array([0.5, 0.62, 0.66, 0.81])
    weights = _slope_weights(xs, extra=(9,))
    assert [x for x, _ in weights] == [1, 3, 5, 7, 9] and weights[-1][1] == 0.0
    assert sum(w * y for (_, w), y in zip(weights, ys)) == pytest.approx(np.polyfit(xs, ys, 1)[0], abs=1e-12)
