"""The manifest: one record per utterance, whatever corpus it came from.

Every corpus loader (``prepare_iemocap``, ``prepare_meld`` ...) returns a :class:`Manifest`;
everything downstream (folds, features, training) reads only the manifest. The record follows
lhotse's ``SupervisionSegment`` in spirit: small, typed, serialisable.

>>> u = Utterance(id="Ses01F_impro01_M000", corpus="iemocap", session="Ses01",
...               dialog="Ses01F_impro01", speaker="Ses01M", gender="M", kind="improvised",
...               script=None, audio_path="a.wav", start=0.0, duration=1.5, text="Hi.",
...               label="neu")
>>> m = Manifest([u])
>>> m.to_frame().loc[0, "speaker"]
'Ses01M'
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.io import atomic_write

Kind = Literal["improvised", "scripted", "other"]
Word = tuple[str, float, float]  # (word, start seconds, end seconds), relative to the utterance


@dataclass(frozen=True)
class Utterance:
    """One utterance of one speaker, with its labels and (optionally) word timings.

    ``start`` is the offset of the utterance inside ``audio_path`` (0 when the file holds the
    utterance alone, as IEMOCAP's ``sentences/wav`` do); word times are relative to ``start``.
    ``label_votes`` holds every evaluator's categorical codes as ``{"C-E1": ["neu"], ...}``.
    """

    id: str
    corpus: str
    session: str | None
    dialog: str | None
    speaker: str
    gender: str | None
    kind: Kind
    script: str | None
    audio_path: str
    start: float
    duration: float
    text: str
    label: str
    label_votes: dict[str, list[str]] = field(default_factory=dict)
    vad: tuple[float, float, float] | None = None
    words: list[Word] | None = None
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Utterance":
        d = dict(d)
        if d.get("vad") is not None:
            d["vad"] = tuple(float(x) if x is not None else float("nan") for x in d["vad"])
        if d.get("words") is not None:
            d["words"] = [(str(w), float(s), float(e)) for w, s, e in d["words"]]
        d["label_votes"] = {k: list(v) for k, v in (d.get("label_votes") or {}).items()}
        d["extra"] = dict(d.get("extra") or {})
        return Utterance(**d)


FIELDS = [f.name for f in dataclasses.fields(Utterance)]
# Columns whose values are nested (lists/dicts): Parquet stores them as JSON strings so that a
# round trip is exact and does not depend on pyarrow's nested-type inference.
_JSON_COLUMNS = ("label_votes", "vad", "words", "extra")


class ManifestError(WorkbenchError, ValueError):
    """Raised when a manifest fails validation; the message lists every problem found."""


class OutsideRootError(WorkbenchError, ValueError):
    """A path taken from the data resolves outside the folder it must stay in."""


def inside_root(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` lies under ``root`` once both are resolved (``..`` and symlinks followed).

    Paths read from a table or a manifest are data: ``../``, an absolute path or a symlink
    could otherwise make a loader read (or a writer overwrite) any file on the machine.
    """
    return Path(path).resolve().is_relative_to(Path(root).resolve())


@dataclass(frozen=True)
class Skipped:
    """One thing a loader did not turn into an utterance, and why."""

    path: str
    line: int | None  # 1-based line number in ``path``; None when the whole file is at fault
    item: str  # utterance id or the offending text
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.item}: {self.reason}"


@dataclass
class PrepareReport:
    """What a ``prepare_<corpus>`` call read, skipped and warned about: nothing is dropped silently."""

    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[Skipped] = field(default_factory=list)

    def skip(self, path: str | Path, line: int | None, item: str, reason: str) -> None:
        self.skipped.append(Skipped(str(path), line, item, reason))

    def warn(self, path: str | Path, line: int | None, item: str, reason: str) -> None:
        self.warnings.append(Skipped(str(path), line, item, reason))

    def to_frame(self) -> pd.DataFrame:
        rows = [dict(kind="skipped", **dataclasses.asdict(s)) for s in self.skipped]
        rows += [dict(kind="warning", **dataclasses.asdict(s)) for s in self.warnings]
        df = pd.DataFrame(rows, columns=["kind", "path", "line", "item", "reason"])
        df["line"] = df["line"].astype("Int64")  # whole-file problems have no line
        return df

    def summary(self) -> str:
        """One line per reason with its count, e.g. ``skipped 3: non-utterance transcript id``."""
        lines = []
        for kind, items in (("skipped", self.skipped), ("warning", self.warnings)):
            for reason, n in Counter(s.reason for s in items).most_common():
                lines.append(f"{kind} {n}: {reason}")
        return "\n".join(lines) or "nothing skipped"


class Reporter:
    """What loaders write problems to: a PrepareReport that raises on the first problem when
    ``strict`` (``skip`` and ``bad``), plus ``note`` for informational warnings that never raise."""

    def __init__(self, strict: bool):
        self.report = PrepareReport()
        self.strict = strict

    def skip(self, path: Path | str, line: int | None, item: str, reason: str) -> None:
        self.report.skip(path, line, item, reason)
        if self.strict:
            raise ValueError(str(self.report.skipped[-1]))

    def bad(self, path: Path | str, line: int | None, item: str, reason: str) -> None:
        """Malformed input that was worked around: a warning, an error when strict."""
        self.report.warn(path, line, item, reason)
        if self.strict:
            raise ValueError(str(self.report.warnings[-1]))

    def note(self, path: Path | str, line: int | None, item: str, reason: str) -> None:
        """Informational (missing alignment, fallback durations): never raises."""
        self.report.warn(path, line, item, reason)


class Manifest:
    """An ordered collection of :class:`Utterance` records with table and file views.

    ``report`` holds the loader's :class:`PrepareReport` when the manifest came from one.
    """

    def __init__(self, utterances: Iterable[Utterance], report: PrepareReport | None = None):
        self.utterances: list[Utterance] = list(utterances)
        self._index = {u.id: i for i, u in enumerate(self.utterances)}
        self.report = report

    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self) -> Iterator[Utterance]:
        return iter(self.utterances)

    def __getitem__(self, key: str | int) -> Utterance:
        if isinstance(key, str):
            return self.utterances[self._index[key]]
        return self.utterances[key]

    def __contains__(self, utt_id: object) -> bool:
        return utt_id in self._index

    def __repr__(self) -> str:
        corpora = sorted({u.corpus for u in self.utterances})
        return f"Manifest({len(self)} utterances, corpus={','.join(corpora) or '-'})"

    @property
    def ids(self) -> list[str]:
        return [u.id for u in self.utterances]

    def subset(self, ids: Iterable[str]) -> "Manifest":
        """The utterances with these ids, in the given order."""
        return Manifest(self[i] for i in ids)

    def filter(self, predicate) -> "Manifest":
        return Manifest(u for u in self.utterances if predicate(u))

    # ----------------------------------------------------------------- table view
    def to_frame(self) -> pd.DataFrame:
        """One row per utterance, one column per :class:`Utterance` field."""
        # getattr, not dataclasses.asdict: asdict deep-copies every nested list (10x slower)
        return pd.DataFrame([[getattr(u, f) for f in FIELDS] for u in self.utterances], columns=FIELDS)

    @staticmethod
    def from_frame(df: pd.DataFrame) -> "Manifest":
        missing = [c for c in FIELDS if c not in df.columns]
        if missing:
            raise ManifestError(f"manifest table lacks columns {missing}")
        rows = df[FIELDS].to_dict(orient="records")
        return Manifest(Utterance.from_dict(_none_for_nan(r)) for r in rows)

    # ----------------------------------------------------------------- files
    def to_parquet(self, path: str | Path) -> Path:
        """Write atomically (temp file + rename), so a crash never leaves half a manifest."""
        df = self.to_frame()
        for col in _JSON_COLUMNS:
            df[col] = [json.dumps(v) for v in df[col]]
        return atomic_write(Path(path), lambda tmp: df.to_parquet(tmp, index=False))

    @staticmethod
    def from_parquet(path: str | Path) -> "Manifest":
        df = pd.read_parquet(path)
        for col in _JSON_COLUMNS:
            df[col] = [json.loads(v) for v in df[col]]
        return Manifest.from_frame(df)

    def to_jsonl(self, path: str | Path) -> Path:
        def write(tmp: Path) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                for u in self.utterances:
                    f.write(json.dumps(u.to_dict(), ensure_ascii=False) + "\n")

        return atomic_write(Path(path), write)

    @staticmethod
    def from_jsonl(path: str | Path) -> "Manifest":
        utts = []
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    utts.append(Utterance.from_dict(json.loads(line)))
                except (json.JSONDecodeError, TypeError) as e:
                    raise ManifestError(f"{path}:{lineno}: not a manifest record ({e})") from e
        return Manifest(utts)

    @staticmethod
    def load(path: str | Path) -> "Manifest":
        path = Path(path)
        if path.suffix == ".parquet":
            return Manifest.from_parquet(path)
        if path.suffix == ".jsonl":
            return Manifest.from_jsonl(path)
        raise ManifestError(f"{path}: unknown manifest format (use .parquet or .jsonl)")

    # ----------------------------------------------------------------- checks
    def check_standard(self, **options: Any) -> Any:
        """Compare this IEMOCAP copy with the standard 4-class list public toolkits ship:
        counts, missing and extra ids, label, session, speaker and duration differences, by id
        (:func:`workbench.corpus.standard.check_standard`; ``options`` go to it). Returns its
        :class:`~workbench.corpus.standard.StandardCheck`."""
        from workbench.corpus.standard import check_standard

        return check_standard(self, **options)

    def validate(self, check_audio: bool = False) -> "Manifest":
        """Raise :class:`ManifestError` listing every problem; return self when clean."""
        problems: list[str] = []
        dup = [i for i, n in Counter(u.id for u in self.utterances).items() if n > 1]
        if dup:
            problems.append(f"duplicate ids: {dup[:10]}{' ...' if len(dup) > 10 else ''}")
        for u in self.utterances:
            if not u.speaker:
                problems.append(f"{u.id}: empty speaker")
            if not u.label:
                problems.append(f"{u.id}: empty label")
            if not (u.duration > 0):
                problems.append(f"{u.id}: duration {u.duration} is not positive")
            if u.kind not in ("improvised", "scripted", "other"):
                problems.append(f"{u.id}: kind {u.kind!r} is not improvised/scripted/other")
            if u.kind == "scripted" and not u.script:
                problems.append(f"{u.id}: scripted utterance without script name")
            if u.words:
                for w, s, e in u.words:
                    if e < s:
                        problems.append(f"{u.id}: word {w!r} ends ({e}) before it starts ({s})")
                        break
            if check_audio and not Path(u.audio_path).is_file():
                problems.append(f"{u.id}: audio file {u.audio_path} does not exist")
        if problems:
            head = "\n  ".join(problems[:50])
            more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
            raise ManifestError(f"manifest has {len(problems)} problem(s):\n  {head}{more}")
        return self


def _none_for_nan(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, float) and v != v and k not in ("start", "duration"):
            v = None
        out[k] = v
    return out
