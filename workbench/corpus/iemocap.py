"""IEMOCAP loader: ``prepare_iemocap(root)`` reads an ``IEMOCAP_full_release`` tree -> Manifest.

Layout read (per ``Session{1..5}``)::

    dialog/EmoEvaluation/<dialog>.txt          labels, V/A/D, every evaluator's votes
    dialog/transcriptions/<dialog>.txt         oracle transcripts
    sentences/wav/<dialog>/<utt>.wav           16 kHz mono, one utterance per file
    sentences/ForcedAlignment/<dialog>/<utt>.wdseg   Sphinx-3 word segmentation

Conventions (decided here, relied on downstream):

* **speaker** = ``SesNN`` + the LAST ``[FM]`` letter of the id. The letter after ``SesNN``
  names the actor wearing motion-capture markers in that dialog (kept as ``"F"``/``"M"`` in
  ``extra["marker_actor"]``), not the speaker; :func:`speaker_from_dialog_prefix` is that
  wrong rule, kept only so the leakage audit can compare both.
* **words** are ``(word, start_s, end_s)`` relative to the utterance start. Sphinx frames are
  10 ms and ``EFrm`` is inclusive, so a word on frames 33..61 spans 0.33 s .. 0.62 s.
  Words are lower-cased with pronunciation variants stripped (``ME(2)`` -> ``me``);
  ``<s>``, ``</s>`` and ``<sil>`` are dropped; filler tokens are kept, lower-cased, with their
  ``++`` marks (``++LAUGHTER++`` -> ``++laughter++``; test with :func:`is_filler`).
  ``words`` is None when the ``.wdseg`` is missing.
* **text** has non-speech tags (``[LAUGHTER]``, ``[BREATHING]``, ``[GARBAGE]`` ...) removed;
  the line as written is in ``extra["text_raw"]``.
* Evaluator votes: ``label_votes = {"C-E2": ["neu"], "C-E4": ["fru", "ang"], ...}`` (words
  mapped to codes; an unknown word becomes ``oth`` with a warning) and
  ``extra["vad_votes"] = {"A-E3": [val, act, dom], ...}`` (floats; ``dom`` None when the
  evaluator gave none). Non-empty evaluator comments go to ``extra["vote_comments"]``.

Nothing is dropped silently: every skipped line, file or utterance is recorded in
``manifest.report`` (a :class:`PrepareReport`) with its file and 1-based line. With
``strict=True`` the first problem raises :class:`ValueError` instead. Informational notes
(a missing ``.wdseg``, durations taken from the summary times, a transcript that is only tags)
are warnings that never raise.

>>> parse_utterance_id("Ses05M_script01_1b_F012")["speaker"]
'Ses05F'
>>> speaker_from_id("Ses01F_impro01_M000"), speaker_from_dialog_prefix("Ses01F_impro01_M000")
('Ses01M', 'Ses01F')
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import soundfile as sf

from workbench.corpus.labels import IEMOCAP_CODES, IEMOCAP_WORD_TO_CODE
from workbench.corpus.manifest import Manifest, PrepareReport, Reporter, Utterance, Word
from workbench.corpus.registry import register_corpus

SAMPLE_RATE = 16000
# Only these wav subtypes can hold NaN/inf, so only they are read at load time (PCM costs
# nothing beyond the header).
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
FRAMES_PER_S = 100  # Sphinx-3 frame rate (10 ms shift) of the ForcedAlignment .wdseg files
RELEASE_DIR = "IEMOCAP_full_release"

_DIALOG = r"Ses(0[1-5])([FM])_(impro0[1-8][ab]?|script0[1-3]_[1-3]b?)"
UTT_ID_RE = re.compile(_DIALOG + r"_([FM])(\d{3})")
DIALOG_RE = re.compile(_DIALOG)

_NUM = r"(\d+(?:\.\d*)?)"
# `[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]`; spacing
# is matched leniently, the fields strictly.
_SUMMARY_RE = re.compile(
    rf"^\[\s*{_NUM}\s*-\s*{_NUM}\s*\]\s+(\S+)\s+(\S+)\s+\[([^\]]*)\]\s*$"
)
_EVALUATOR_RE = re.compile(r"^([CA])-([A-Za-z]+\d*)\s*:(.*)$")
_ATTRIBUTE_RE = re.compile(r"^(val|act|dom)\s+([-+]?\d+(?:\.\d*)?)$")
# `Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.`
_TRANSCRIPT_RE = re.compile(rf"^(\S+)\s*\[\s*{_NUM}\s*-\s*{_NUM}\s*\]\s*:\s?(.*)$")
_TAG_RE = re.compile(r"\[[A-Za-z][A-Za-z_ ]*\]")
_VARIANT_RE = re.compile(r"\(\d+\)$")
_DROPPED_TOKENS = frozenset({"<s>", "</s>", "<sil>"})


# --------------------------------------------------------------------------- ids
def parse_utterance_id(utt_id: str) -> dict[str, Any]:
    """Split an IEMOCAP utterance id into its parts (regex, never character positions).

    >>> d = parse_utterance_id("Ses03F_impro05a_M004")
    >>> d["session"], d["marker"], d["dialog"], d["kind"], d["script"], d["speaker"], d["index"]
    ('Ses03', 'F', 'Ses03F_impro05a', 'improvised', None, 'Ses03M', 4)
    """
    m = UTT_ID_RE.fullmatch(utt_id)
    if m is None:
        raise ValueError(f"{utt_id!r} is not an IEMOCAP utterance id")
    sess, marker, part, letter, index = m.groups()
    session = f"Ses{sess}"
    scripted = part.startswith("script")
    return {
        "session": session,
        "marker": marker,
        "dialog": f"{session}{marker}_{part}",
        "kind": "scripted" if scripted else "improvised",
        "script": part.split("_")[0] if scripted else None,
        "speaker": session + letter,
        "gender": letter,
        "index": int(index),
    }


def speaker_from_id(utt_id: str) -> str:
    """The speaker: ``SesNN`` + the last ``[FM]`` letter (``Ses01F_impro01_M000`` -> ``Ses01M``)."""
    return parse_utterance_id(utt_id)["speaker"]


def speaker_from_dialog_prefix(utt_id: str) -> str:
    """The WRONG rule many public loaders use: ``SesNN`` + the marker letter after it.

    Kept for comparisons: workbench.leakage.speaker_rule_check applies both rules.

    >>> speaker_from_dialog_prefix("Ses05M_script01_1b_F012")
    'Ses05M'
    """
    d = parse_utterance_id(utt_id)
    return d["session"] + d["marker"]


def is_filler(word: str) -> bool:
    """True for Sphinx filler tokens kept in ``words`` (``++laughter++``, ``++breathing++``)."""
    return len(word) > 4 and word.startswith("++") and word.endswith("++")


def clean_transcript(text: str) -> str:
    """Remove non-speech tags such as ``[LAUGHTER]`` and normalise spaces.

    >>> clean_transcript("Yeah. [LAUGHTER]  Okay [BREATHING] then.")
    'Yeah. Okay then.'
    """
    return " ".join(_TAG_RE.sub(" ", text).split())


# --------------------------------------------------------------------------- reporting
def _read_lines(path: Path, rep: Reporter) -> list[str]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        rep.bad(path, raw[: e.start].count(b"\n") + 1, path.name, "not UTF-8; read as latin-1")
        text = raw.decode("latin-1")
    # split on "\n" only (not str.splitlines) so that line numbers match editors and grep
    return [ln.rstrip("\r") for ln in text.split("\n")]


def _data_files(folder: Path, suffix: str) -> list[Path]:
    """Plain files with this suffix, sorted; skips subfolders (EmoEvaluation/Categorical/ ...)
    and macOS AppleDouble ``._*`` companions, which are metadata, not data."""
    return sorted(
        folder / name
        for name in os.listdir(folder)
        if name.endswith(suffix)
        and not name.startswith("._")
        and os.path.isfile(folder / name)
    )


# --------------------------------------------------------------------------- EmoEvaluation
@dataclass
class LabelBlock:
    """One EmoEvaluation block: the summary line and its evaluator lines."""

    id: str
    line: int  # 1-based line of the summary line
    start: float
    end: float
    label: str
    vad: tuple[float, float, float]
    votes: dict[str, list[str]] = field(default_factory=dict)
    vad_votes: dict[str, list[float | None]] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)


def _parse_summary(line: str) -> tuple[float, float, str, str, tuple[float, float, float]] | str:
    """The summary line's fields, or a string saying what is wrong with it."""
    m = _SUMMARY_RE.match(line)
    if m is None:
        return "malformed summary line"
    start, end, utt_id, code, vad_text = m.groups()
    try:
        vad = tuple(float(x) for x in vad_text.split(","))
    except ValueError:
        return "malformed V/A/D in summary line"
    if len(vad) != 3:
        return f"summary line has {len(vad)} V/A/D values, expected 3"
    if float(end) <= float(start):
        return f"summary line ends ({end}) before it starts ({start})"
    return float(start), float(end), utt_id, code, vad  # type: ignore[return-value]


def _split_comment(rest: str) -> tuple[str, str]:
    """``"Frustration; Anger;\\t(a bit annoyed)"`` -> ``("Frustration; Anger;", "a bit annoyed")``."""
    i = rest.find("(")
    if i < 0:
        return rest, ""
    return rest[:i], rest[i + 1 :].strip().removesuffix(")").strip()


def read_emo_evaluation(path: str | Path, report: PrepareReport | None = None,
                        *, strict: bool = False) -> list[LabelBlock]:
    """Parse one ``dialog/EmoEvaluation/<dialog>.txt`` into blocks, in file order.

    Malformed summary lines skip their block (evaluator lines under them are ignored with
    it); malformed evaluator lines are warned about and left out. Duplicate ids keep the
    first block.
    """
    rep = Reporter(strict)
    if report is not None:
        rep.report = report
    path = Path(path)
    dialog = path.stem
    blocks: list[LabelBlock] = []
    first_line: dict[str, int] = {}
    current: LabelBlock | None = None
    in_skipped_block = False
    for lineno, line in enumerate(_read_lines(path, rep), 1):
        stripped = line.strip()
        if not stripped:
            current, in_skipped_block = None, False
            continue
        if stripped.startswith("%"):  # header: % [START_TIME - END_TIME] TURN_NAME ...
            continue
        if stripped.startswith("["):
            current, in_skipped_block = None, True
            parsed = _parse_summary(stripped)
            if isinstance(parsed, str):
                found = UTT_ID_RE.search(stripped)  # name the utterance when it can be seen
                rep.skip(path, lineno, found.group(0) if found else stripped, parsed)
                continue
            start, end, utt_id, code, vad = parsed
            if UTT_ID_RE.fullmatch(utt_id) is None:
                rep.skip(path, lineno, utt_id, "not an utterance id")
            elif parse_utterance_id(utt_id)["dialog"] != dialog:
                rep.skip(path, lineno, utt_id, f"utterance of another dialog than {dialog}")
            elif code not in IEMOCAP_CODES:
                rep.skip(path, lineno, utt_id, f"unknown label code {code!r}")
            elif utt_id in first_line:
                rep.skip(path, lineno, utt_id, f"duplicate id (first at line {first_line[utt_id]})")
            else:
                current, in_skipped_block = LabelBlock(utt_id, lineno, start, end, code, vad), False
                first_line[utt_id] = lineno
                blocks.append(current)
            continue
        if in_skipped_block:
            continue  # evaluator lines of a block already reported as skipped
        m = _EVALUATOR_RE.match(stripped)
        if m is None:
            rep.skip(path, lineno, stripped, "malformed EmoEvaluation line")
            continue
        if current is None:
            rep.skip(path, lineno, stripped, "evaluator line outside a block")
            continue
        kind, who, rest = m.groups()
        key = f"{kind}-{who}"
        body, comment = _split_comment(rest)
        if key in current.votes or key in current.vad_votes:
            rep.bad(path, lineno, current.id, f"duplicate evaluator {key}; first kept")
            continue
        if kind == "C":
            codes = _categorical_codes(body, path, lineno, current.id, rep)
            if not codes:
                rep.bad(path, lineno, current.id, f"{key} gives no label")
                continue
            current.votes[key] = codes
        else:
            ratings = _attribute_ratings(body)
            if isinstance(ratings, str):
                rep.bad(path, lineno, current.id, f"{key}: {ratings}")
                continue
            current.vad_votes[key] = ratings
        if comment:
            current.comments[key] = comment
    return blocks


def _categorical_codes(body: str, path: Path, lineno: int, utt_id: str, rep: Reporter) -> list[str]:
    codes = []
    for word in body.split(";"):
        word = " ".join(word.split()).lower()  # odd spacing: " Neutral ", "Neutral  state"
        if not word:
            continue
        code = IEMOCAP_WORD_TO_CODE.get(word)
        if code is None:
            rep.bad(path, lineno, utt_id, f"unknown emotion word {word!r} counted as oth")
            code = "oth"
        codes.append(code)
    return codes


def _attribute_ratings(body: str) -> list[float | None] | str:
    """``"val 3; act 2; dom  2;"`` -> ``[3.0, 2.0, 2.0]``; dom may be missing (None)."""
    got: dict[str, float] = {}
    for part in body.split(";"):
        part = " ".join(part.split())
        if not part:
            continue
        m = _ATTRIBUTE_RE.match(part)
        if m is None or m.group(1) in got:
            return f"malformed rating {part!r}"
        got[m.group(1)] = float(m.group(2))
    if "val" not in got or "act" not in got:
        return "rating without val or act"
    return [got["val"], got["act"], got.get("dom")]


# --------------------------------------------------------------------------- transcriptions
def read_transcription(path: str | Path, report: PrepareReport | None = None,
                       *, strict: bool = False) -> dict[str, tuple[int, str]]:
    """Parse ``dialog/transcriptions/<dialog>.txt`` -> ``{utt_id: (line, raw text)}``.

    Lines with a non-utterance id (``Ses03F_impro06_FXX0``), no time stamp, another dialog's
    id or a repeated id are reported and left out.
    """
    rep = Reporter(strict)
    if report is not None:
        rep.report = report
    path = Path(path)
    out: dict[str, tuple[int, str]] = {}
    for lineno, line in enumerate(_read_lines(path, rep), 1):
        stripped = line.strip()
        if not stripped:
            continue
        m = _TRANSCRIPT_RE.match(stripped)
        if m is None:
            rep.skip(path, lineno, stripped, "malformed transcription line")
            continue
        utt_id, _, _, text = m.groups()
        if UTT_ID_RE.fullmatch(utt_id) is None:
            rep.skip(path, lineno, utt_id, "non-utterance transcript id")
        elif parse_utterance_id(utt_id)["dialog"] != path.stem:
            rep.skip(path, lineno, utt_id, f"utterance of another dialog than {path.stem}")
        elif utt_id in out:
            rep.skip(path, lineno, utt_id, f"duplicate transcript id (first at line {out[utt_id][0]})")
        else:
            out[utt_id] = (lineno, text.strip())
    return out


# --------------------------------------------------------------------------- word alignment
def read_wdseg(path: str | Path, report: PrepareReport | None = None,
               *, strict: bool = False) -> list[Word] | None:
    """Words of one ``.wdseg`` as ``(word, start_s, end_s)``; None when the file is unusable.

    ``start = SFrm * 0.01``, ``end = (EFrm + 1) * 0.01`` (EFrm is the last frame of the word).
    """
    rep = Reporter(strict)
    if report is not None:
        rep.report = report
    path = Path(path)
    words: list[Word] = []
    seen_data = False
    for lineno, line in enumerate(_read_lines(path, rep), 1):
        parts = line.split()
        if not parts or parts[0] == "SFrm" or parts[0] == "Total":
            continue
        try:
            if len(parts) != 4:
                raise ValueError
            sfrm, efrm, _score = int(parts[0]), int(parts[1]), int(parts[2])
        except ValueError:
            rep.bad(path, lineno, line.strip(), "malformed .wdseg line; words set to None")
            return None
        if efrm < sfrm:
            rep.bad(path, lineno, line.strip(), "word ends before it starts; words set to None")
            return None
        seen_data = True
        token = _VARIANT_RE.sub("", parts[3]).lower()
        if token in _DROPPED_TOKENS:
            continue
        # frames -> seconds by division (not * 0.01) so 33 -> 0.33 exactly as a float literal
        words.append((token, sfrm / FRAMES_PER_S, (efrm + 1) / FRAMES_PER_S))
    if not seen_data:
        rep.bad(path, None, path.stem, "no segments in .wdseg; words set to None")
        return None
    return words


# --------------------------------------------------------------------------- audio
def _wav_duration(path: Path, utt_id: str, rep: Reporter) -> float | None:
    """Duration in seconds from the header, or None (reported) when the wav is unusable."""
    try:
        st = os.stat(path)  # one stat for both checks: this runs 10k times on the real corpus
    except FileNotFoundError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        rep.skip(path, None, utt_id, "wav file missing")
        return None
    if st.st_size == 0:
        rep.skip(path, None, utt_id, "wav file is empty")
        return None
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile raises its own error types for corrupt headers
        rep.skip(path, None, utt_id, f"wav file unreadable ({type(e).__name__})")
        return None
    if info.samplerate != SAMPLE_RATE:
        rep.skip(path, None, utt_id, f"sample rate {info.samplerate} Hz, expected {SAMPLE_RATE}")
        return None
    if info.channels != 1:
        rep.skip(path, None, utt_id, f"{info.channels} channels, expected mono")
        return None
    if info.frames <= 0:
        rep.skip(path, None, utt_id, "wav file has no samples")
        return None
    if info.subtype in FLOAT_SUBTYPES:
        bad = _non_finite(path, info.subtype)
        if bad:
            rep.skip(path, None, utt_id, f"non-finite samples ({bad} of {info.frames})")
            return None
    return info.frames / info.samplerate


def _non_finite(path: Path, subtype: str) -> int:
    """How many NaN/inf samples a float wav holds (they would only fail at feature extraction)."""
    # read in the file's own precision: no conversion cost, and no DOUBLE overflowing to inf
    x = sf.read(str(path), dtype="float32" if subtype == "FLOAT" else "float64")[0]
    finite = np.isfinite(x)
    return 0 if finite.all() else int(finite.size - finite.sum())


# --------------------------------------------------------------------------- prepare
def find_release(root: str | Path) -> Path:
    """The ``IEMOCAP_full_release`` folder: ``root`` itself or ``root/IEMOCAP_full_release``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"IEMOCAP root {root} does not exist or is not a folder")
    if (root / RELEASE_DIR).is_dir():
        return root / RELEASE_DIR
    if any((root / f"Session{n}").is_dir() for n in range(1, 6)):
        return root
    raise FileNotFoundError(
        f"{root} holds neither {RELEASE_DIR}/ nor Session1..Session5 folders"
    )


def _session_dirs(release: Path, sessions: Sequence[int] | None) -> list[tuple[int, Path]]:
    if sessions is None:
        return [(n, release / f"Session{n}") for n in range(1, 6)
                if (release / f"Session{n}").is_dir()]
    out = []
    for n in sessions:
        if n not in range(1, 6):
            raise ValueError(f"sessions: {n!r} is not an IEMOCAP session (1..5)")
        folder = release / f"Session{n}"
        if not folder.is_dir():
            raise FileNotFoundError(f"IEMOCAP session folder {folder} does not exist")
        out.append((n, folder))
    return out


def prepare_iemocap(
    root: str | Path,
    sessions: Sequence[int] | None = None,
    *,
    check_audio: bool = True,
    strict: bool = False,
    corpus_name: str = "iemocap",
) -> Manifest:
    """Read an IEMOCAP tree into a validated :class:`Manifest` (``manifest.report`` says what
    was skipped and why).

    root: the ``IEMOCAP_full_release`` folder or a folder containing it. sessions: session
    numbers (1..5) to read, default every ``Session*`` folder present; a session folder
    without dialogs (empty, or lacking ``dialog/EmoEvaluation`` or ``dialog/transcriptions``)
    is reported as "no dialogs" and the others load. check_audio: read each wav header for
    the duration (and skip missing/empty/unreadable/non-16 kHz mono wavs, and float wavs
    holding NaN/inf: only FLOAT/DOUBLE wavs are read in full, PCM ones never are); when False
    the duration is the summary line's ``end - start`` and wavs are not opened.
    strict: raise ValueError at the first problem instead of reporting it. corpus_name: the
    ``corpus`` field (the synthetic corpus, written in this layout, passes its own name).
    """
    release = find_release(root)
    rep = Reporter(strict)
    utts: list[Utterance] = []
    for number, sess_dir in _session_dirs(release, sessions):
        found = _session_files(sess_dir, rep)
        if found is None:
            continue
        emo_files, trans_files = found
        for dialog in sorted(set(emo_files) | set(trans_files)):
            m = DIALOG_RE.fullmatch(dialog)
            if m is None or int(m.group(1)) != number:
                for p in (emo_files.get(dialog), trans_files.get(dialog)):
                    if p is not None:
                        rep.skip(p, None, dialog, f"not a dialog of Session{number}")
                continue
            utts += _prepare_dialog(sess_dir, dialog, emo_files.get(dialog),
                                    trans_files.get(dialog), rep, check_audio, corpus_name)
    if not check_audio and utts:
        rep.note(release, None, "*", f"check_audio=False: {len(utts)} durations taken from "
                 "EmoEvaluation end - start; wav files not checked")
    return Manifest(utts, report=rep.report).validate()


def _session_files(sess_dir: Path, rep: Reporter) -> tuple[dict[str, Path], dict[str, Path]] | None:
    """The session's EmoEvaluation and transcription files by dialog, or None (reported as
    "no dialogs") when a folder is missing or both are empty: one incomplete session (a copy
    still being unpacked) must not stop the others from loading."""
    folders = [sess_dir / "dialog" / "EmoEvaluation", sess_dir / "dialog" / "transcriptions"]
    missing = [f"dialog/{f.name}" for f in folders if not f.is_dir()]
    if missing:
        rep.skip(sess_dir, None, sess_dir.name, f"no dialogs: {', '.join(missing)} missing; "
                 "session not read")
        return None
    emo_files, trans_files = ({p.stem: p for p in _data_files(f, ".txt")} for f in folders)
    if not emo_files and not trans_files:
        rep.skip(sess_dir, None, sess_dir.name,
                 "no dialogs: dialog/EmoEvaluation and dialog/transcriptions hold no .txt files")
        return None
    return emo_files, trans_files


def _prepare_dialog(sess_dir: Path, dialog: str, emo_path: Path | None, trans_path: Path | None,
                    rep: Reporter, check_audio: bool, corpus_name: str) -> list[Utterance]:
    """The utterances of one dialog, in time order (then id)."""
    if emo_path is None:
        rep.skip(sess_dir / "dialog" / "EmoEvaluation" / f"{dialog}.txt", None, dialog,
                 "EmoEvaluation file missing for a transcribed dialog")
    if trans_path is None:
        rep.skip(sess_dir / "dialog" / "transcriptions" / f"{dialog}.txt", None, dialog,
                 "transcription file missing for an evaluated dialog")
    blocks = read_emo_evaluation(emo_path, rep.report, strict=rep.strict) if emo_path else []
    texts = read_transcription(trans_path, rep.report, strict=rep.strict) if trans_path else {}
    labelled = {b.id for b in blocks}
    for utt_id, (lineno, _) in texts.items():
        if utt_id not in labelled:
            rep.skip(trans_path, lineno, utt_id, "transcript without EmoEvaluation label")

    wav_dir = sess_dir / "sentences" / "wav" / dialog
    align_dir = sess_dir / "sentences" / "ForcedAlignment" / dialog
    out = []
    for b in sorted(blocks, key=lambda b: (b.start, b.id)):
        if b.id not in texts:
            rep.skip(emo_path, b.line, b.id, "EmoEvaluation label without transcript")
            continue
        wav = wav_dir / f"{b.id}.wav"
        if check_audio:
            duration = _wav_duration(wav, b.id, rep)
            if duration is None:
                continue
        else:
            duration = b.end - b.start
        wdseg = align_dir / f"{b.id}.wdseg"
        try:
            words = read_wdseg(wdseg, rep.report, strict=rep.strict)
        except (FileNotFoundError, IsADirectoryError):
            rep.note(wdseg, None, b.id, "no .wdseg word alignment; words=None")
            words = None
        raw = texts[b.id][1]
        text = clean_transcript(raw)
        if not text:
            rep.note(trans_path, texts[b.id][0], b.id, "transcript is empty after removing tags")
        parts = parse_utterance_id(b.id)
        extra: dict[str, Any] = {
            "marker_actor": parts["marker"],  # F/M: the actor wearing markers, not the speaker
            "times": (b.start, b.end),
            "text_raw": raw,
            "vad_votes": b.vad_votes,
        }
        if b.comments:
            extra["vote_comments"] = b.comments
        out.append(Utterance(
            id=b.id, corpus=corpus_name, session=parts["session"], dialog=dialog,
            speaker=parts["speaker"], gender=parts["gender"], kind=parts["kind"],
            script=parts["script"], audio_path=os.path.abspath(wav), start=0.0,
            duration=duration, text=text, label=b.label, label_votes=b.votes, vad=b.vad,
            words=words, extra=extra,
        ))
    return out


@register_corpus("iemocap", "IEMOCAP_full_release at root= (evaluations, transcripts, .wdseg timings, optional video)",
                 root="IEMOCAP_full_release")
def load_iemocap(root: str | Path, data_dir: str | Path | None = None, **options: Any) -> Manifest:
    """The ``iemocap`` corpus: :func:`prepare_iemocap` of ``root``."""
    return prepare_iemocap(root, **options)
