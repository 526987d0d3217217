"""Import any corpus from a table (CSV, TSV or Parquet) whose columns the user maps.

``import_table(path, columns={...})`` turns one row per utterance into a validated
:class:`Manifest`. ``columns`` maps manifest fields to the table's column names::

    import_table("my_corpus.csv", columns={"audio_path": "wav", "label": "emotion",
                                           "speaker": "spk", "split": "set"})

Fields that can be mapped: ``id audio_path text label speaker session dialog gender kind
script start duration end split valence arousal dominance``. Only ``audio_path`` and
``label`` are required. Unmapped fields take defaults: ``id`` = the audio file's stem,
``speaker`` = ``"Unknown"`` (a marker, not a real speaker; a whole-file warning says so, and
speaker-independent protocols should not be used), ``kind`` = ``"other"``, ``start`` = 0,
``duration`` = ``end - start`` when an ``end`` is given, else the rest of the audio file
after ``start`` (read from its header; needs a file soundfile can open), ``text`` = "".
Times are seconds in the audio file: finite, ``start >= 0``, ``duration > 0``, ``end >
start``, and (when the audio is checked) ``start + duration`` within the file's length
(:data:`END_TOLERANCE_S` of slack).
When ``columns`` is None, columns named like the fields (or a few common aliases such as
``path``, ``wav``, ``emotion``, ``transcript``) are used. Every column of the table is kept,
as a string, in ``extra["row"]``.

Relative audio paths are resolved against ``audio_root`` (default: the table's folder);
a path that resolves outside it (``..``, an absolute path elsewhere, a symlink pointing out)
is skipped unless ``allow_outside_root=True``.
Rows with a missing or unreadable audio file, an empty label, a label outside ``labels``
(when given), a bad number, a repeated id or an unterminated quote (the rows after it are
still read) are skipped and reported in
``manifest.report`` with the file and the 1-based line (CSV/TSV: the physical line where
the row starts; Parquet: 1 + the row's position, as if the header were line 1).

>>> import tempfile, pathlib, numpy as np, soundfile as sf
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> sf.write(d / "a.wav", np.zeros(8000, dtype="float32"), 16000)
>>> _ = (d / "t.csv").write_text("wav,emotion,spk\\na.wav,happy,s1\\nb.wav,sad,s2\\n")
>>> m = import_table(d / "t.csv", columns={"audio_path": "wav", "label": "emotion", "speaker": "spk"})
>>> [(u.id, u.label, u.duration) for u in m], m.report.skipped[0].line
([('a', 'happy', 0.5)], 3)
"""

from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd
import soundfile as sf

from workbench.corpus.manifest import Manifest, ManifestError, PrepareReport, Reporter, Utterance, inside_root
from workbench.corpus.registry import register_corpus

FIELDS = ("id", "audio_path", "text", "label", "speaker", "session", "dialog", "gender",
          "kind", "script", "start", "duration", "end", "split", "valence", "arousal",
          "dominance")
REQUIRED = ("audio_path", "label")
# Column names tried, in order, for each field when the user gives no mapping.
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "utt_id", "utterance_id"),
    "audio_path": ("audio_path", "path", "wav", "file", "filename", "audio"),
    "text": ("text", "transcript", "transcription", "sentence", "utterance"),
    "label": ("label", "emotion", "class"),
    "speaker": ("speaker", "speaker_id", "spk"),
    "session": ("session",),
    "dialog": ("dialog", "dialogue", "conversation"),
    "gender": ("gender", "sex"),
    "kind": ("kind",),
    "script": ("script",),
    "start": ("start",),
    "duration": ("duration",),
    "end": ("end",),
    "split": ("split", "set", "partition"),
    "valence": ("valence",),
    "arousal": ("arousal", "activation"),
    "dominance": ("dominance",),
}
UNKNOWN_SPEAKER = "Unknown"
# How far start + duration may run past the end of the audio file: rounding in the table's
# times (often written to the millisecond) must not skip the last utterance of a recording.
END_TOLERANCE_S = 0.01


def read_csv_rows(path: str | Path, delimiter: str | None = None, encoding: str = "utf-8-sig",
                  report: PrepareReport | None = None, *, strict: bool = False,
                  ) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(line, row)`` pairs of a delimited text file, values as stripped strings.

    ``line`` is the 1-based physical line where the row starts, so quoted fields with
    newlines do not shift later rows' numbers. The delimiter defaults to tab for ``.tsv`` and
    comma otherwise. A UTF-8 byte-order mark is dropped; lines that are not UTF-8 are read as
    cp1252 (the encoding of spreadsheet exports) rather than failing, with one warning in
    ``report`` naming them (:func:`decode_text`). Rows shorter than the header get "" for
    the missing cells; longer rows are returned with the surplus under ``None`` so that
    callers can report them. Blank lines are skipped.

    A row whose quoting is broken (a quote opened and never closed, which would otherwise
    swallow every later row into one cell) is left out and reported in ``report`` with its
    line, and reading goes on at the next line. Without a ``report`` either problem is a
    :class:`ManifestError`. ``strict``: raise ValueError at the first problem instead.
    """
    path = Path(path)
    rep = Reporter(strict)
    if report is not None:
        rep.report = report
    text, not_utf8 = decode_text(path.read_bytes(), encoding)
    if not_utf8:
        reason = not_utf8_reason(not_utf8)
        if report is None:
            raise ManifestError(f"{path}:{not_utf8[0]}: {path.name}: {reason}")
        rep.bad(path, not_utf8[0], path.name, reason)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    lines = _LINE_RE.findall(text)
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    i = 0
    while i < len(lines):
        record, used, problem = _parse_record(lines, i, delimiter, header)
        start_line = i + 1
        if record is None:
            if header is None:
                raise ManifestError(f"{path}:{start_line}: header line has an {problem}; fix its quoting")
            item = lines[i].rstrip("\r\n")[:60]
            if report is None:
                raise ManifestError(f"{path}:{start_line}: {item}: {problem}; fix the quoting "
                                    "(a quote inside a quoted cell is written twice)")
            rep.skip(path, start_line, item, f"{problem}; row skipped")
            i += 1  # the lines it would have swallowed are rows of their own
            continue
        i += used
        if not record or all(not c.strip() for c in record):
            continue
        if header is None:
            header = [c.strip() for c in record]
            continue
        row: dict[str, Any] = {h: (record[k].strip() if k < len(record) else "")
                               for k, h in enumerate(header)}
        if len(record) > len(header):
            row[None] = record[len(header):]  # type: ignore[index]
        rows.append((start_line, row))
    if header is None:
        raise ManifestError(f"{path}: empty table (no header line)")
    return header, rows


# cp1252 for the bytes 0x80-0x9f, applied to latin-1 text; the five bytes cp1252 leaves
# undefined (0x81 0x8d 0x8f 0x90 0x9d) stay as their C1 characters instead of becoming U+FFFD,
# so no byte is lost (meld.fix_mojibake relies on the same convention).
_CP1252_C1 = {b: bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(0x80, 0xA0)}


def decode_text(raw: bytes, encoding: str = "utf-8-sig") -> tuple[str, list[int]]:
    """``raw`` decoded, and the 1-based lines that were not valid ``encoding``.

    Those lines are read as cp1252 (the encoding of spreadsheet exports and of MELD's CSVs);
    the others keep ``encoding``, so one stray byte does not turn every other line's UTF-8
    into mojibake. Callers report the returned lines (:func:`not_utf8_reason`).
    """
    try:
        return raw.decode(encoding), []
    except UnicodeDecodeError:
        pass
    parts, bad = [], []
    for k, line in enumerate(_BYTE_LINE_RE.findall(raw)):
        try:
            parts.append(line.decode(encoding if k == 0 else encoding.removesuffix("-sig")))
        except UnicodeDecodeError:
            parts.append(line.decode("latin-1").translate(_CP1252_C1))
            bad.append(k + 1)
    return "".join(parts), bad


def not_utf8_reason(lines: list[int]) -> str:
    """The one warning for a file's non-UTF-8 lines: how many, which (the first 10)."""
    shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
    return f"not UTF-8 on {len(lines)} line(s): {shown}; those lines read as cp1252"


# One physical line with its terminator; the csv module ends lines at \r\n, \r or \n only
# (str.splitlines would also split at \x0c, \x1c, \u2028 ... inside cells).
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_BYTE_LINE_RE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _parse_record(lines: list[str], i: int, delimiter: str, header: list[str] | None
                  ) -> tuple[list[str] | None, int, str]:
    """The record starting at ``lines[i]`` and how many lines it spans, or (None, 0, reason).

    Parsed with ``strict=True`` so that a quote that does not end at a delimiter is an error
    instead of a cell that silently runs on over later rows. A record spanning several lines
    must have the header's cell count: a quote opened by mistake and "closed" by the opening
    quote of a later cell would otherwise merge the rows between them.
    """
    reader = csv.reader(map(lines.__getitem__, range(i, len(lines))), delimiter=delimiter,
                        strict=True)
    try:
        record = next(reader)
    except csv.Error as e:
        if str(e) == "unexpected end of data":
            return None, 0, "unterminated quote: the quote opened on this line never closes"
        if reader.line_num > 1:
            return None, 0, (f"unterminated quote: the quote opened on this line runs on to line "
                             f"{i + reader.line_num}")
        return None, 0, (f"unterminated quote: a quoted cell on this line does not end at a "
                         f"delimiter (csv: {e})")
    used = reader.line_num
    if used > 1 and header is not None and len(record) != len(header):
        return None, 0, (f"unterminated quote: the quote opened on this line runs on to line "
                         f"{i + used} and leaves {len(record)} cells (header has {len(header)})")
    return record, used, ""


def require_columns(path: str | Path, header: Iterable[str], needed: Iterable[str]) -> None:
    """Raise :class:`ManifestError` naming the file and every needed column it lacks."""
    have = set(header)
    missing = [c for c in needed if c not in have]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}; columns present: {sorted(have)}")


def _read_table(path: Path, rep: Reporter) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return read_csv_rows(path, report=rep.report, strict=rep.strict)
    if suffix in (".parquet", ".pq"):
        df = pd.read_parquet(path)
        header = [str(c) for c in df.columns]
        rows = []
        for i, rec in enumerate(df.to_dict(orient="records")):
            rows.append((i + 2, {str(k): _cell(v) for k, v in rec.items()}))
        return header, rows
    raise ManifestError(f"{path}: unknown table format {suffix!r} (use .csv, .tsv or .parquet)")


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


def resolve_columns(header: list[str], columns: Mapping[str, str] | None) -> dict[str, str]:
    """The field -> column mapping: the user's (checked) or one found from :data:`ALIASES`."""
    if columns is not None:
        unknown = sorted(set(columns) - set(FIELDS))
        if unknown:
            raise ValueError(f"columns: unknown manifest field(s) {unknown}; known: {list(FIELDS)}")
        return dict(columns)
    lower = {h.lower(): h for h in header}
    found = {}
    for fld, names in ALIASES.items():
        for name in names:
            if name in lower:
                found[fld] = lower[name]
                break
    return found


def import_table(
    path: str | Path,
    columns: Mapping[str, str] | None = None,
    *,
    corpus: str = "custom",
    audio_root: str | Path | None = None,
    labels: Iterable[str] | None = None,
    check_audio: bool = True,
    allow_outside_root: bool = False,
    strict: bool = False,
) -> Manifest:
    """Read a table of utterances into a validated :class:`Manifest` (see the module doc).

    columns: manifest field -> table column (None: found by name). corpus: the ``corpus``
    field. audio_root: folder relative audio paths are taken from (default the table's
    folder). labels: the allowed label values (None: any non-empty value). check_audio: skip
    rows whose audio file is missing or unreadable or shorter than ``start + duration``, and
    read durations from the headers; when False, a ``duration`` or ``end`` column is
    required. allow_outside_root: accept audio paths that resolve outside ``audio_root``
    (``..``, absolute paths, symlinks pointing out); by default such rows are skipped as
    "outside root". strict: raise ValueError at the first problem instead of reporting it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table {path} does not exist")
    rep = Reporter(strict)
    header, rows = _read_table(path, rep)
    cols = resolve_columns(header, columns)
    missing_fields = [f for f in REQUIRED if f not in cols]
    if missing_fields:
        raise ManifestError(f"{path}: no column for required field(s) {missing_fields}; "
                            f"map them with columns={{field: column}} (columns present: {header})")
    if not check_audio and "duration" not in cols and "end" not in cols:
        raise ManifestError(f"{path}: check_audio=False needs a duration (or end) column")
    require_columns(path, header, cols.values())
    root = Path(audio_root) if audio_root is not None else path.parent
    allowed = set(labels) if labels is not None else None
    if "speaker" not in cols:
        rep.note(path, None, "*", f"no speaker column: every speaker is {UNKNOWN_SPEAKER!r}, "
                 "so speaker-independent protocols are meaningless on this table")

    utts: list[Utterance] = []
    first: dict[str, int] = {}
    for line, row in rows:
        get = lambda f: row.get(cols[f], "") if f in cols else ""  # noqa: E731
        if None in row:
            rep.skip(path, line, get("audio_path") or "?", f"{len(header) + len(row[None])} cells, "
                     f"header has {len(header)}")
            continue
        audio_rel = get("audio_path")
        if not audio_rel:
            rep.skip(path, line, "?", "empty audio path")
            continue
        audio = Path(audio_rel) if os.path.isabs(audio_rel) else root / audio_rel
        utt_id = get("id") or Path(audio_rel).stem
        if not allow_outside_root and not inside_root(audio, root):
            rep.skip(path, line, utt_id, f"outside root: {audio_rel!r} resolves to "
                     f"{audio.resolve()}, not under {root}; pass allow_outside_root=True to read it")
            continue
        label = get("label")
        if not label:
            rep.skip(path, line, utt_id, "empty label")
            continue
        if allowed is not None and label not in allowed:
            rep.skip(path, line, utt_id, f"unknown label {label!r}")
            continue
        if utt_id in first:
            rep.skip(path, line, utt_id, f"duplicate id (first at line {first[utt_id]})")
            continue
        try:
            vad = _vad(get("valence"), get("arousal"), get("dominance"))
        except ValueError as e:
            rep.skip(path, line, utt_id, str(e))
            continue
        try:
            start, duration = _times(get("start"), get("duration"), get("end"))
        except ValueError as e:
            rep.skip(path, line, utt_id, str(e))
            continue
        if check_audio:
            try:
                info = sf.info(str(audio))
            except Exception as e:  # missing file, or a format libsndfile cannot read
                reason = "audio file missing" if not audio.is_file() else f"audio unreadable ({type(e).__name__})"
                rep.skip(path, line, utt_id, f"{reason}: {audio}")
                continue
            length = info.frames / info.samplerate
            if start >= length:
                rep.skip(path, line, utt_id, f"start {start:g} is at or after the end of the "
                         f"audio ({length:g} s)")
                continue
            if duration is None:
                duration = length - start
            elif start + duration > length + END_TOLERANCE_S:
                rep.skip(path, line, utt_id, f"start {start:g} + duration {duration:g} = "
                         f"{start + duration:g} s runs past the end of the audio ({length:g} s)")
                continue
        if duration is None or not duration > 0:
            rep.skip(path, line, utt_id, f"duration {duration} is not positive")
            continue
        kind = get("kind") or "other"
        if kind not in ("improvised", "scripted", "other"):
            rep.skip(path, line, utt_id, f"kind {kind!r} is not improvised/scripted/other")
            continue
        if kind == "scripted" and not get("script"):
            rep.skip(path, line, utt_id, "scripted row without a script name")
            continue
        first[utt_id] = line
        utts.append(Utterance(
            id=utt_id, corpus=corpus, session=get("session") or None,
            dialog=get("dialog") or None, speaker=get("speaker") or UNKNOWN_SPEAKER,
            gender=get("gender") or None, kind=kind, script=get("script") or None,
            audio_path=os.path.abspath(audio), start=start, duration=duration,
            text=get("text"), label=label, vad=vad, split=get("split") or None,
            extra={"row": {h: row[h] for h in header}, "source_line": line},
        ))
    return Manifest(utts, report=rep.report).validate()


def _times(start_text: str, duration_text: str, end_text: str) -> tuple[float, float | None]:
    """(start, duration or None) from the cells; ValueError saying which value is impossible.

    An empty start is 0; an empty duration is None (taken from the audio file, or from
    ``end - start`` when an end is given).
    """
    start = _finite("start", start_text) if start_text else 0.0
    if start < 0:
        raise ValueError(f"start {start_text} is negative")
    duration = _finite("duration", duration_text) if duration_text else None
    if duration is not None and not duration > 0:
        raise ValueError(f"duration {duration_text} is not positive")
    if end_text:
        end = _finite("end", end_text)
        if not end > start:
            raise ValueError(f"end {end_text} is not after start {start:g}")
        if duration is None:
            duration = end - start
        elif abs(end - start - duration) > END_TOLERANCE_S:
            raise ValueError(f"duration {duration_text} disagrees with end - start = {end - start:g}")
    return start, duration


def _finite(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):  # float() accepts "inf" and "nan"
        raise ValueError(f"{name} {text!r} is not a finite number")
    return value


def _vad(val: str, aro: str, dom: str) -> tuple[float, float, float] | None:
    """(valence, arousal, dominance) when any is given; a missing one is NaN (not given), while a
    given one must be a finite number (``inf``, ``nan``, ``1e309`` are ValueErrors)."""
    if not (val or aro or dom):
        return None
    return tuple(_finite(name, x) if x else float("nan")  # type: ignore[return-value]
                 for name, x in zip(("valence", "arousal", "dominance"), (val, aro, dom)))


@register_corpus("csv", "any corpus as a CSV/TSV/Parquet table at root= (columns= maps its columns)",
                 root="the CSV/TSV/Parquet table")
def load_table(root: str | Path, data_dir: str | Path | None = None, **options: Any) -> Manifest:
    """The ``csv`` corpus: :func:`import_table` of the table at ``root``."""
    return import_table(root, **options)
