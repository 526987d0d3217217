"""In-memory IEMOCAP-shaped manifests for tests and examples (no audio is written or read).

The shape follows IEMOCAP where it matters for folds and leakage:

- sessions ``Ses01``.. with one female and one male speaker each (``Ses01F``, ``Ses01M``);
- improvised dialogs ``Ses01F_impro01`` with fresh text in every session;
- scripted dialogs ``Ses01M_script02_1`` whose lines are the same in every session and whose
  line labels mostly repeat (``script_label_repeat``), which is what makes leave-one-session-out
  folds leak text;
- utterance ids ``<dialog>_<F|M><nnn>`` where the LAST letter names the speaker and the letter
  after ``SesNN`` (the dialog prefix) is drawn independently of it, so a loader that takes the
  speaker from the prefix is wrong about half the time, as on the real corpus;
- some transcripts carry fillers, tags and case/punctuation changes (``text_noise``) so text
  normalisation is exercised.

>>> m = make_manifest(sessions=2, dialogs_per_session=1, turns_per_dialog=4, seed=0)
>>> len(m), sorted({u.speaker for u in m})
(32, ['Ses01F', 'Ses01M', 'Ses02F', 'Ses02M'])
>>> sorted({u.script for u in m if u.kind == "scripted"})
['script01', 'script02', 'script03']
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from workbench.corpus.manifest import Manifest, Utterance

# A small vocabulary for improvised lines; emotion words are mixed in so texts look plausible.
_VOCAB = (
    "i you we they the a this that it is was are not never always really so very just "
    "think know want need feel said told going home work money car job house time today "
    "tomorrow again here there now great terrible happy sad angry fine okay sorry love hate "
    "believe wait leave stay call help please thanks why what how when where who can't won't"
).split()
_FILLERS = ("Um,", "Uh,", "Hmm.", "Well, um,")
_TAGS = ("[LAUGHTER]", "[BREATHING]", "[GARBAGE]")


def make_utterance(**overrides: Any) -> Utterance:
    """One valid IEMOCAP-shaped utterance; any field can be overridden.

    >>> make_utterance(id="Ses02M_impro03_F001").speaker
    'Ses02F'
    """
    utt_id = overrides.pop("id", "Ses01F_impro01_M000")
    session, dialog, letter = utt_id[:5], utt_id.rsplit("_", 1)[0], utt_id.rsplit("_", 1)[1][0]
    scripted = "_script" in utt_id
    fields: dict[str, Any] = dict(
        id=utt_id,
        corpus="dummy",
        session=session,
        dialog=dialog,
        speaker=f"{session}{letter}",
        gender=letter,
        kind="scripted" if scripted else "improvised",
        script=utt_id.split("_")[1] if scripted else None,
        audio_path=f"{dialog}/{utt_id}.wav",
        start=0.0,
        duration=2.0,
        text="Excuse me.",
        label="neu",
    )
    fields.update(overrides)
    return Utterance(**fields)


def _sentence(rng: np.random.Generator) -> str:
    words = rng.choice(_VOCAB, size=int(rng.integers(4, 9)))
    text = " ".join(words)
    return text[0].upper() + text[1:] + str(rng.choice([".", "?", "!"]))


def _noisy(text: str, rng: np.random.Generator) -> str:
    """The same line as an actor might deliver it: filler, tag, or changed case/punctuation."""
    choice = int(rng.integers(3))
    if choice == 0:
        return f"{rng.choice(_FILLERS)} {text[0].lower()}{text[1:]}"
    if choice == 1:
        return f"{text} {rng.choice(_TAGS)}"
    return text.upper().rstrip(".?!") + "..."


def make_manifest(
    sessions: int = 5,
    dialogs_per_session: int = 2,
    scripted: bool = True,
    scripts: Sequence[str] = ("script01", "script02", "script03"),
    turns_per_dialog: int = 6,
    labels: Sequence[str] = ("neu", "hap", "ang", "sad"),
    script_label_repeat: float = 0.8,
    text_noise: float = 0.2,
    splits: bool = False,
    corpus: str = "dummy",
    seed: int = 0,
) -> Manifest:
    """An IEMOCAP-shaped manifest held in memory.

    ``dialogs_per_session`` improvised dialogs (``impro01``..) plus, when ``scripted``, one
    dialog per script in every session, each with ``turns_per_dialog`` turns alternating
    between the session's two speakers. Script line ``i`` has the same text (up to
    ``text_noise``) and, with probability ``script_label_repeat``, the same label in every
    session. ``splits=True`` fills the ``split`` column by session (last session ``test``,
    the one before ``dev``, the rest ``train``) for the ``official`` protocol.
    Deterministic for a given ``seed``.
    """
    if not 1 <= sessions <= 99:
        raise ValueError(f"sessions={sessions}: must be between 1 and 99")
    if not 0 <= dialogs_per_session <= 8:
        raise ValueError(f"dialogs_per_session={dialogs_per_session}: IEMOCAP has impro01..impro08")
    if splits and sessions < 3:
        raise ValueError(f"splits=True needs at least 3 sessions (train/dev/test), got {sessions}")
    rng = np.random.default_rng(seed)
    # Script lines and their "intended" emotion are fixed once, then replayed in every session.
    script_lines = {s: [_sentence(rng) for _ in range(turns_per_dialog)] for s in scripts}
    script_labels = {s: [str(rng.choice(labels)) for _ in range(turns_per_dialog)] for s in scripts}

    utts: list[Utterance] = []
    for s in range(1, sessions + 1):
        session = f"Ses{s:02d}"
        plan = [(f"impro{d:02d}", None) for d in range(1, dialogs_per_session + 1)]
        if scripted:
            plan += [(f"{name}_1", name) for name in scripts]
        for dialog_name, script in plan:
            prefix = str(rng.choice(["F", "M"]))  # the motion-capture actor, not the speaker
            dialog = f"{session}{prefix}_{dialog_name}"
            first = str(rng.choice(["F", "M"]))
            counters = {"F": 0, "M": 0}
            for turn in range(turns_per_dialog):
                letter = first if turn % 2 == 0 else ("M" if first == "F" else "F")
                utt_id = f"{dialog}_{letter}{counters[letter]:03d}"
                counters[letter] += 1
                if script is None:
                    text, label = _sentence(rng), str(rng.choice(labels))
                else:
                    text = script_lines[script][turn]
                    keep = rng.random() < script_label_repeat
                    label = script_labels[script][turn] if keep else str(rng.choice(labels))
                if rng.random() < text_noise:
                    text = _noisy(text, rng)
                split = None
                if splits:
                    split = "test" if s == sessions else "dev" if s == sessions - 1 else "train"
                utts.append(
                    make_utterance(
                        id=utt_id,
                        corpus=corpus,
                        duration=round(float(rng.uniform(1.0, 6.0)), 3),
                        text=text,
                        label=label,
                        split=split,
                    )
                )
    return Manifest(utts)
