"""Is a user's IEMOCAP copy the standard one? A comparison with the list public toolkits ship.

SUPERB (s3prl ``downstream/emotion``) and EmoBox distribute the same 4-class IEMOCAP set built
from the real release: 5,531 utterances (neu 1,708, hap 595 + exc 1,041 = 1,636, ang 1,103,
sad 1,084). The package ships it as ``workbench/corpus/reference/iemocap4_standard.csv``
(:func:`load_standard`; that folder's README gives the sources). :func:`check_standard`
compares a prepared copy with it: counts (10,039 utterances with every label, 5,531 in the
4-class set, 151 dialogs), then, each by id, standard utterances the copy lacks, 4-class
utterances the standard lacks, 4-class label disagreements (``exc`` merged into ``hap`` as the
standard does), session and speaker disagreements, and durations further apart than a
tolerance. A result on the real corpus with the workbench's own loader should show none.

>>> std = load_standard()
>>> len(std), std["label"].value_counts().to_dict()
(5531, {'neu': 1708, 'hap': 1636, 'ang': 1103, 'sad': 1084})
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

import pandas as pd

# Nothing from workbench.corpus.manifest or .labels: Manifest.check_standard calls this module,
# and the package's imports must not go in a circle (tests/test_layering.py). The 4-class merge
# is read from the shipped list itself (its code -> label pairs: exc -> hap).
from workbench.errors import WorkbenchError

STANDARD_FILE = "iemocap4_standard.csv"
STANDARD_COLUMNS = ("id", "label", "code", "session", "speaker", "duration_s")
TOTAL_UTTERANCES = 10_039  # the release's labelled utterances, every code (xxx included)
# 4 decimals in the list, and a wav header gives the exact length: 10 ms is slack enough.
DURATION_TOLERANCE_S = 0.01
_SESSION_NUMBER = re.compile(r"(\d+)$")


@lru_cache(maxsize=1)
def _read_standard() -> pd.DataFrame:
    with resources.files("workbench.corpus").joinpath("reference", STANDARD_FILE).open("rb") as f:
        return pd.read_csv(f, dtype={"session": int, "duration_s": float})


def load_standard() -> pd.DataFrame:
    """The shipped standard 4-class list, one row per utterance, columns ``STANDARD_COLUMNS``
    (plus ``superb_order``, the utterance's position in SUPERB's split files)."""
    return _read_standard().copy()


class StandardListError(WorkbenchError, ValueError):
    """A standard list without the needed columns, or a bad option of the check."""


def _dialog(utt_id: str) -> str:
    return utt_id.rsplit("_", 1)[0]


def _session_number(value: object) -> int | None:
    """``"Ses03"`` or ``3`` -> 3; None for anything without a trailing number."""
    m = _SESSION_NUMBER.search(str(value)) if value is not None else None
    return int(m.group(1)) if m else None


@dataclass
class StandardCheck:
    """What :func:`check_standard` found; each table lists one difference per row, by id.

    ``counts``: ``what, standard, found, ok`` (``ok`` None where the copy cannot say, e.g. the
    total of a manifest already reduced to 4 classes). ``missing``: standard utterances absent
    from the copy, with the loader's reason when it skipped them. ``extra``: 4-class utterances
    of the copy that the standard lacks. ``labels``: the 4-class label differs (``found_label``
    None when the copy's code is outside the 4 classes). ``sessions``, ``speakers``,
    ``durations``: the field differs (durations by more than ``tolerance_s``).
    """

    counts: pd.DataFrame
    missing: pd.DataFrame
    extra: pd.DataFrame
    labels: pd.DataFrame
    sessions: pd.DataFrame
    speakers: pd.DataFrame
    durations: pd.DataFrame
    tolerance_s: float
    notes: list[str] = field(default_factory=list)

    TABLES = ("missing", "extra", "labels", "sessions", "speakers", "durations")

    @property
    def differences(self) -> dict[str, int]:
        """Rows per difference table, e.g. ``{"missing": 1, "extra": 0, ...}``."""
        return {name: len(getattr(self, name)) for name in self.TABLES}

    @property
    def ok(self) -> bool:
        """True when no table has a row and no count that can be checked is off."""
        return not any(self.differences.values()) and not (self.counts["ok"] == False).any()  # noqa: E712

    def summary(self) -> str:
        """A few lines: the verdict, the counts that are off and each difference table's size."""
        n = sum(self.differences.values())
        head = ("the copy matches the standard 4-class IEMOCAP list" if self.ok else
                f"the copy differs from the standard 4-class IEMOCAP list: {n} difference(s), listed by id")
        lines = [head]
        # the totals only: the per-label and per-session rows are in the counts table
        totals = self.counts[~self.counts["what"].str.startswith(" ")]
        for r in totals[totals["ok"] == False].itertuples():  # noqa: E712
            lines.append(f"  {r.what}: {r.found} found, standard {r.standard}")
        parts = [f"{name} {count}" for name, count in self.differences.items() if count]
        if parts:
            lines.append("  " + ", ".join(parts))
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def report(self, limit: int | None = 20) -> str:
        """The counts table, every non-empty difference table (first ``limit`` rows each; None
        for all) and the summary: what ``workbench corpus check`` prints."""
        out = ["counts", _indent(self.counts.to_string(index=False))]
        for name in self.TABLES:
            table = getattr(self, name)
            if not len(table):
                continue
            shown = table if limit is None else table.head(limit)
            out.append(f"{name} ({len(table)})")
            out.append(_indent(shown.to_string(index=False)))
            if len(shown) < len(table):
                out.append(f"  ... and {len(table) - len(shown)} more")
        out.append(self.summary())
        return "\n".join(out)

    def to_frame(self) -> pd.DataFrame:
        """Every difference as one long table: ``kind, id, standard, found`` (as text)."""
        rows = []
        for r in self.missing.itertuples():
            rows.append(("missing", r.id, r.label, r.reason))
        for r in self.extra.itertuples():
            rows.append(("extra", r.id, None, r.label))
        for r in self.labels.itertuples():
            rows.append(("label", r.id, r.standard_label, r.found_label))
        for r in self.sessions.itertuples():
            rows.append(("session", r.id, r.standard, r.found))
        for r in self.speakers.itertuples():
            rows.append(("speaker", r.id, r.standard, r.found))
        for r in self.durations.itertuples():
            rows.append(("duration", r.id, f"{r.standard_s:.4f}", f"{r.found_s:.4f}"))
        df = pd.DataFrame(rows, columns=["kind", "id", "standard", "found"])
        return df.astype({"standard": "string", "found": "string"})


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _copy_table(manifest: Iterable[Any], merge: dict[str, str]) -> pd.DataFrame:
    """One row per utterance of the copy: its code, 4-class label (``merge`` of the code, None
    outside the 4 classes), session number, speaker, duration and dialog."""
    rows = []
    for u in manifest:
        # a manifest already passed through a label scheme keeps the release code in label_code
        code = (u.extra or {}).get("label_code", u.label)
        rows.append((u.id, code, merge.get(code), _session_number(u.session), u.speaker, u.duration,
                     u.dialog or _dialog(u.id)))
    return pd.DataFrame(rows, columns=["id", "code", "label", "session", "speaker", "duration_s", "dialog"])


def _skip_reasons(manifest: Iterable[Any]) -> dict[str, str]:
    """``{utterance id: reason}`` for what the loader skipped (``manifest.report``)."""
    report = getattr(manifest, "report", None)
    if report is None:
        return {}
    reasons: dict[str, str] = {}
    for s in report.skipped:
        where = s.path if s.line is None else f"{s.path}:{s.line}"
        reasons.setdefault(s.item, f"skipped by the loader: {s.reason} ({where})")
    return reasons


def check_standard(
    manifest: Iterable[Any],
    standard: pd.DataFrame | None = None,
    *,
    total_utterances: int | None = TOTAL_UTTERANCES,
    duration_tolerance: float = DURATION_TOLERANCE_S,
) -> StandardCheck:
    """Compare a prepared IEMOCAP copy with the standard 4-class list (see the module docstring).

    manifest: the :class:`~workbench.corpus.manifest.Manifest` that ``prepare_iemocap`` /
    ``load_corpus("iemocap", ...)`` returned, with every label or already reduced to ``iemocap4``
    (the total is then not checked); its ``report`` names why a standard utterance was skipped. standard: a table with ``STANDARD_COLUMNS``
    (default: the shipped list). total_utterances: the expected count with every label (None:
    not checked, e.g. against a list of your own). duration_tolerance: seconds.
    """
    if duration_tolerance < 0:
        raise StandardListError(f"duration_tolerance={duration_tolerance}: must be 0 or more")
    std = load_standard() if standard is None else standard.copy()
    lacking = [c for c in STANDARD_COLUMNS if c not in std.columns]
    if lacking:
        raise StandardListError(f"standard list lacks column(s) {lacking}; expected {list(STANDARD_COLUMNS)}")
    std = std.astype({"session": int, "duration_s": float}).set_index("id", drop=False)
    # the 4-class merge as the shipped list makes it (its code -> label pairs: exc -> hap), and a
    # list of your own's pairs on top
    shipped = _read_standard()
    merge = {**dict(zip(shipped["code"], shipped["label"])), **dict(zip(std["code"], std["label"]))}
    copy = _copy_table(manifest, merge)
    four = copy[copy["label"].notna()]
    reduced = any("label_code" in (u.extra or {}) for u in manifest)
    notes: list[str] = []

    std_dialogs = std["id"].map(_dialog).nunique()
    counts = [("utterances, every label", total_utterances, None if reduced else len(copy)),
              ("utterances, 4 classes", len(std), len(four)),
              ("dialogs", std_dialogs, copy["dialog"].nunique())]
    for lab in std["label"].value_counts().index:  # neu, hap, ang, sad on the shipped list
        counts.append((f"  label {lab}", int((std["label"] == lab).sum()), int((four["label"] == lab).sum())))
    for sess in sorted(std["session"].unique()):
        counts.append((f"  Session{sess}", int((std["session"] == sess).sum()),
                       int((four["session"] == sess).sum())))
    counts_df = pd.DataFrame(counts, columns=["what", "standard", "found"])
    counts_df["ok"] = [None if s is None or f is None else bool(s == f) for _, s, f in counts]
    counts_df = counts_df.astype({"standard": "Int64", "found": "Int64", "ok": "object"})
    if reduced:
        notes.append("the manifest holds the 4 classes only (a label scheme was applied), so the "
                      f"count of {total_utterances} utterances with every label is not checked")

    in_copy = copy.set_index("id", drop=False)
    reasons = _skip_reasons(manifest)
    missing_ids = [i for i in std["id"] if i not in in_copy.index]
    missing = std.loc[missing_ids, ["id", "label", "session", "speaker"]].reset_index(drop=True)
    missing["reason"] = [reasons.get(i, "not in the copy") for i in missing_ids]

    extra = four[~four["id"].isin(std.index)][["id", "code", "label", "session", "speaker"]].reset_index(drop=True)

    both = std.loc[[i for i in std["id"] if i in in_copy.index]]
    found = in_copy.loc[both.index]
    label_off = (found["label"] != both["label"]).to_numpy()  # None (outside 4 classes) differs too
    labels = pd.DataFrame({
        "id": both["id"], "standard_label": both["label"], "standard_code": both["code"],
        "found_label": found["label"], "found_code": found["code"],
    })[label_off].reset_index(drop=True)

    session_off = (found["session"] != both["session"]).to_numpy()
    sessions = pd.DataFrame({"id": both["id"], "standard": both["session"],
                             "found": found["session"]})[session_off].reset_index(drop=True)

    speaker_off = (found["speaker"].astype(str) != both["speaker"].astype(str)).to_numpy()
    speakers = pd.DataFrame({"id": both["id"], "standard": both["speaker"],
                             "found": found["speaker"]})[speaker_off].reset_index(drop=True)
    if len(speakers):
        prefix = speakers["id"].str[:6]
        n_prefix = int((speakers["found"] == prefix).sum())
        if n_prefix:
            notes.append(f"{n_prefix} of the {len(speakers)} speaker difference(s) equal the dialog prefix: "
                         "that copy took the speaker from the letter after SesNN, which names the actor "
                         "wearing markers (the speaker is the last F/M letter of the id; docs/corpora.md)")

    gap = (found["duration_s"].astype(float) - both["duration_s"]).abs()
    duration_off = (gap > duration_tolerance).to_numpy() | gap.isna().to_numpy()
    durations = pd.DataFrame({"id": both["id"], "standard_s": both["duration_s"],
                              "found_s": found["duration_s"].astype(float),
                              "difference_s": (found["duration_s"].astype(float) - both["duration_s"])}
                             )[duration_off].reset_index(drop=True)
    report = getattr(manifest, "report", None)
    if len(durations) and report is not None and any("check_audio=False" in w.reason for w in report.warnings):
        notes.append("durations were taken from the EmoEvaluation times (check_audio=False), not the wavs; "
                     "prepare with check_audio=True or pass a larger duration_tolerance")
    if any(u.corpus == "synthetic" for u in manifest):
        notes.append("this is the built-in synthetic corpus, which is not IEMOCAP: differences are expected")
    return StandardCheck(counts_df, missing, extra, labels, sessions, speakers, durations,
                         duration_tolerance, notes)


__all__ = ["DURATION_TOLERANCE_S", "STANDARD_COLUMNS", "StandardCheck", "StandardListError", "TOTAL_UTTERANCES",
           "check_standard", "load_standard"]
