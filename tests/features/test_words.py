"""The shared word rule and the matching of transcript words to timed tokens."""

import pytest

from workbench.features.words import match_word_timings, normalise_timing_token, split_words


@pytest.mark.parametrize("text, words", [
    ("Excuse me.", ["excuse", "me"]),
    ("I can't -- I CAN'T!", ["i", "can't", "i", "can't"]),
    ("Well, [LAUGHTER] okay... [BREATHING]", ["well", "okay"]),
    ("It\u2019s fine\u2014really", ["it's", "fine", "really"]),
    ("well--I don't know", ["well", "i", "don't", "know"]),
    ('"Quoted," (parens) well-known', ["quoted", "parens", "well-known"]),
    ("", []),
    (None, []),
    ("?! ... -- [GARBAGE] ,", []),
    ("word[LAUGHTER]word", ["word", "word"]),
])
def test_split_words(text, words):
    assert split_words(text) == words


def test_timing_tokens_normalised_like_words():
    toks = ["<s>", "</s>", "<sil>", "++LAUGHTER++", "++BREATHING++", "[NOISE]", "ME(2)", "CAN'T", "to(3)"]
    assert [normalise_timing_token(t) for t in toks] == [None] * 6 + ["me", "can't", "to"]


WDSEG = [("<s>", 0.0, 0.33), ("EXCUSE", 0.33, 0.62), ("ME(2)", 0.62, 0.91), ("++LAUGHTER++", 0.91, 1.2),
         ("OKAY", 1.2, 1.5), ("</s>", 1.5, 1.7)]


def test_match_exact_skips_fillers_and_variants():
    words = split_words("Excuse me. [LAUGHTER] Okay!")
    assert match_word_timings(words, WDSEG) == [(0.33, 0.62), (0.62, 0.91), (1.2, 1.5)]


def test_match_substitution_takes_the_replaced_span():
    # "ok" in the transcript, "OKAY" in the timings: a spelling difference.
    assert match_word_timings(["excuse", "me", "ok"], WDSEG)[2] == (1.2, 1.5)
    assert match_word_timings(["excuse", "me", "ok"], WDSEG, interpolate=False)[2] is None


def test_match_inserted_words_share_the_gap_in_order():
    timings = [("HELLO", 0.2, 0.5), ("WORLD", 1.1, 1.4)]
    spans = match_word_timings(["hello", "big", "wide", "world"], timings)
    assert spans[0] == (0.2, 0.5) and spans[3] == (1.1, 1.4)
    assert spans[1] == pytest.approx((0.5, 0.8)) and spans[2] == pytest.approx((0.8, 1.1))


def test_match_no_time_available_gives_none():
    timings = [("HELLO", 0.2, 0.5), ("WORLD", 0.5, 0.9)]
    assert match_word_timings(["hello", "there", "world"], timings) == [(0.2, 0.5), None, (0.5, 0.9)]
    assert match_word_timings(["a", "b"], []) == [None, None]
    assert match_word_timings(["a", "b"], None) == [None, None]
    assert match_word_timings([], WDSEG) == []


def test_match_keeps_order_with_repeated_words():
    timings = [("NO", 0.0, 0.2), ("NO", 0.3, 0.5), ("YES", 0.6, 0.8), ("NO", 0.9, 1.0)]
    first, *rest = match_word_timings(["no", "yes", "no"], timings)
    assert first in [(0.0, 0.2), (0.3, 0.5)] and rest == [(0.6, 0.8), (0.9, 1.0)]
    spans = match_word_timings(["no", "no", "yes", "no"], timings)
    assert spans == [(0.0, 0.2), (0.3, 0.5), (0.6, 0.8), (0.9, 1.0)]
