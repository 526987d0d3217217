"""Text side of the synthetic corpus: a small grammar of neutral and emotion-bearing phrases.

Used only by :mod:`workbench.corpus.synthetic`. Emotion phrases overlap on purpose between
neighbouring emotions (happy/excited, angry/frustrated), and neutral templates carry no cue, so
a text model has real but limited evidence.
"""

from __future__ import annotations

import numpy as np

NOUNS = ["car", "ticket", "letter", "phone", "house", "office", "dinner", "meeting", "report",
         "train", "money", "form", "key", "package", "job", "apartment", "flight", "bill",
         "schedule", "message", "bag", "coffee", "class", "doctor", "party", "bank", "check"]
PLACES = ["at home", "at the office", "in the car", "downtown", "at the airport", "upstairs",
          "at the bank", "in the kitchen", "on the table", "at the station", "next door"]
TIMES = ["today", "tomorrow", "tonight", "this morning", "last week", "on Monday", "later",
         "right now", "next month", "at noon", "yesterday"]
PEOPLE = ["brother", "sister", "mother", "father", "boss", "friend", "neighbor", "cousin",
          "husband", "wife", "manager", "landlord"]
VERBS = ["bring", "check", "call", "find", "send", "move", "fix", "pick up", "sign", "print",
         "cancel", "book", "pay", "open", "read"]
VERBS_PAST = ["brought", "checked", "called", "found", "sent", "moved", "fixed", "picked up",
              "signed", "printed", "cancelled", "booked", "paid", "opened", "read"]
ADJS = ["blue", "small", "new", "old", "open", "ready", "upstairs", "late", "early", "full"]

NEUTRAL_TEMPLATES = [
    "The {noun} is {place}.",
    "We need to {verb} the {noun} {time}.",
    "Did you {verb} the {noun}?",
    "I was {place} {time}.",
    "My {person} {verb_past} the {noun}.",
    "Can you {verb} it {time}?",
    "The {noun} was {adj}.",
    "I think the {noun} is {adj}.",
    "Where is the {noun}?",
    "It is {place}, I think.",
    "So you {verb_past} the {noun} {time}.",
    "Your {person} wants the {noun} {time}.",
    "Let me {verb} the {noun} first.",
    "What time is the {noun}?",
]

# Emotion-bearing phrases per IEMOCAP code. Neutral's "phrases" are hedges that mark calm talk.
EMOTION_PHRASES: dict[str, list[str]] = {
    "neu": ["Okay.", "I see.", "Alright.", "That makes sense.", "I suppose so.", "Sure.",
            "Let me think.", "Fair enough.", "Right.", "Mm, okay then."],
    "hap": ["I'm so happy.", "That's wonderful!", "I love it.", "This is great.",
            "Thank you so much!", "How lovely.", "I'm really glad.", "That's so sweet.",
            "What a nice surprise.", "You made my day."],
    "exc": ["Oh my god!", "This is amazing!", "We did it!", "I can't wait!", "Awesome!",
            "That's incredible!", "Yes, yes, yes!", "Fantastic!", "I'm so excited!",
            "This is great!"],
    "ang": ["Are you kidding me?", "That's ridiculous!", "Get out!", "I hate this.",
            "Shut up!", "How dare you!", "Don't you dare!", "This is outrageous!",
            "Damn it!", "I'm sick of you!"],
    "sad": ["I miss him.", "I'm so sorry.", "It's hopeless.", "I feel so alone.",
            "Nothing matters anymore.", "I can't bear it.", "He's gone.",
            "I'm tired of everything.", "It hurts so much.", "I just want to cry."],
    "fru": ["This is not working.", "Why does it always happen?", "I've been waiting for hours.",
            "Nobody listens.", "Again and again.", "I don't understand why.",
            "This makes no sense.", "Forget it.", "I'm sick of this.", "Come on."],
    "fea": ["I'm scared.", "What was that?", "Please don't.", "I'm afraid.",
            "Something is wrong."],
    "sur": ["Really?", "No way!", "Wait, what?", "I didn't expect that.", "You're kidding!"],
    "dis": ["That's disgusting.", "Gross.", "Ugh, that's awful."],
    "oth": ["Hmm.", "Well."],
}


def neutral_clause(rng: np.random.Generator) -> str:
    """One cue-free sentence from the templates, slots filled at random."""
    t = NEUTRAL_TEMPLATES[rng.integers(len(NEUTRAL_TEMPLATES))]
    return t.format(
        noun=NOUNS[rng.integers(len(NOUNS))], place=PLACES[rng.integers(len(PLACES))],
        time=TIMES[rng.integers(len(TIMES))], person=PEOPLE[rng.integers(len(PEOPLE))],
        verb=VERBS[rng.integers(len(VERBS))], verb_past=VERBS_PAST[rng.integers(len(VERBS_PAST))],
        adj=ADJS[rng.integers(len(ADJS))],
    )


def emotion_phrase(code: str, rng: np.random.Generator) -> str:
    phrases = EMOTION_PHRASES.get(code, EMOTION_PHRASES["oth"])
    return phrases[rng.integers(len(phrases))]


def make_text(code: str, n_cue: int, rng: np.random.Generator, confuser: str | None = None,
              max_neutral: int = 2) -> str:
    """A line for emotion ``code`` with ``n_cue`` emotion phrases among neutral clauses.

    ``confuser`` adds one phrase of another emotion (sarcasm, mixed feelings): text evidence that
    points the wrong way.
    """
    parts = [emotion_phrase(code, rng) for _ in range(n_cue)]
    if confuser is not None:
        parts.append(emotion_phrase(confuser, rng))
    n_neutral = int(rng.integers(0 if parts else 1, max_neutral + 1))
    parts += [neutral_clause(rng) for _ in range(n_neutral)]
    order = rng.permutation(len(parts))
    return " ".join(parts[i] for i in order)
