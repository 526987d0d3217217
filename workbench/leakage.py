"""Leakage audit: what each fold's test set shares with its training set.

A number reported on a fold is only as honest as the fold. This module measures, per fold,
how much of the test set a model could have seen in training in some form: the same speaker,
session, dialog or script; the same transcript (exactly, or nearly after normalising case,
punctuation, fillers and tags); the same transcript *with the same label*, which a text
model can simply memorise; and how different the label distributions are. It also checks
the IEMOCAP speaker-id pitfall (speaker taken from the dialog prefix instead of the utterance).

>>> normalize_text("Um, I can't BELIEVE it! [LAUGHTER]")
'i cant believe it'
>>> from workbench.testing import make_manifest
>>> from workbench.protocols import make_folds
>>> m = make_manifest(seed=0)
>>> r = leakage_report(m, make_folds(m, "session_script"))
>>> float(r["script_test_share"].max()), bool((r["speaker_test_share"] == 0).all())
(0.0, True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from workbench.corpus.iemocap import UTT_ID_RE
from workbench.corpus.manifest import Manifest
from workbench.corpus.text import normalize_text
from workbench.protocols import Fold, manifest_table

# The audited overlap kinds and the manifest column each one compares.
OVERLAP_KINDS = ("speaker", "session", "dialog", "script")

COLUMN_DESCRIPTIONS: dict[str, str] = {
    "n_train": "utterances in the reference set (train, or train+validation)",
    "n_test": "utterances in the test set",
    "{kind}_shared": "distinct {kind}s present in both reference and test",
    "{kind}_test_share": "share of test utterances whose {kind} also occurs in the reference set",
    "text_exact_share": "share of test utterances whose normalised transcript occurs in the reference set",
    "text_near_share": "share of test utterances with a reference transcript at similarity >= threshold "
    "(includes exact matches)",
    "text_same_label_share": "share of test utterances whose normalised transcript occurs in the "
    "reference set WITH THE SAME LABEL: what a text model can memorise",
    "label_tvd": "total variation distance between reference and test label distributions "
    "(0 = identical, 1 = disjoint)",
}

try:  # rapidfuzz is much faster; difflib gives the same kind of ratio without it
    from rapidfuzz import fuzz as _fuzz
    from rapidfuzz import process as _process
except ImportError:  # pragma: no cover - exercised only where rapidfuzz is absent
    _fuzz = _process = None


def near_duplicate_pairs(texts: Sequence[str], threshold: float = 0.9, chunk: int = 2000) -> np.ndarray:
    """Index pairs ``(i, j)``, ``i != j``, of texts whose similarity is at least ``threshold``.

    Similarity is the normalised Indel ratio ``2 * matches / (len_i + len_j)`` in [0, 1]
    (rapidfuzz's ``fuzz.ratio`` / 100; difflib's ``SequenceMatcher.ratio`` when rapidfuzz is
    missing). Returns an int array of shape (n_pairs, 2) holding both orders of every pair.
    On 2 cores 8,000 distinct transcripts take about a second with rapidfuzz.

    >>> near_duplicate_pairs(["excuse me", "excuse me sir", "go away"], threshold=0.8).tolist()
    [[0, 1], [1, 0]]
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold={threshold}: must be in (0, 1]")
    texts = list(texts)
    n = len(texts)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    found: list[np.ndarray] = []
    if _process is not None:
        cutoff = int(np.ceil(threshold * 100 - 1e-9))
        # ratio <= 2*min(len)/(len_a + len_b), so a text of length L can only match lengths in
        # [L*t/(2-t), L*(2-t)/t]: compare each length-sorted chunk with that band only.
        lens = np.array([len(t) for t in texts])
        order = np.argsort(lens, kind="stable")
        sorted_lens = lens[order]
        sorted_texts = [texts[k] for k in order]
        for lo in range(0, n, chunk):
            rows = slice(lo, min(lo + chunk, n))
            a = np.searchsorted(sorted_lens, np.floor(sorted_lens[rows][0] * threshold / (2 - threshold)), "left")
            b = np.searchsorted(sorted_lens, np.ceil(sorted_lens[rows][-1] * (2 - threshold) / threshold), "right")
            scores = _process.cdist(
                sorted_texts[rows], sorted_texts[a:b], scorer=_fuzz.ratio, score_cutoff=cutoff,
                dtype=np.uint8, workers=-1,
            )
            i, j = np.nonzero(scores >= max(cutoff, 1))
            found.append(np.stack([order[i + lo], order[j + a]], axis=1))
    else:  # pragma: no cover
        from difflib import SequenceMatcher

        lens = np.array([len(t) for t in texts])
        rows = []
        for i in range(n):
            sm = SequenceMatcher(None, texts[i], autojunk=False)
            for j in range(n):
                # ratio <= 2*min/(sum of lengths): skip pairs whose lengths alone rule them out
                if i == j or 2 * min(lens[i], lens[j]) < threshold * (lens[i] + lens[j]):
                    continue
                sm.set_seq1(texts[j])
                if sm.ratio() >= threshold:
                    rows.append((i, j))
        found.append(np.array(rows, dtype=np.int64).reshape(-1, 2))
    pairs = np.concatenate(found).astype(np.int64)
    return pairs[pairs[:, 0] != pairs[:, 1]]


def _frame(manifest: Manifest | pd.DataFrame) -> pd.DataFrame:
    df = manifest_table(manifest)
    for col in ("id", "label"):
        if col not in df.columns:
            raise ValueError(f"leakage audit: the manifest has no {col!r} field")
    return df.set_index("id", drop=False)


def _positions(df: pd.DataFrame, fold: Fold, part: str, ids: Sequence[str]) -> np.ndarray:
    pos = df.index.get_indexer(list(ids))
    if (pos < 0).any():
        missing = [i for i, p in zip(ids, pos) if p < 0]
        raise ValueError(
            f"leakage audit: fold {fold.name!r} ({fold.protocol}) has {len(missing)} {part} id(s) "
            f"not in the manifest, e.g. {missing[:5]}"
        )
    return pos


def _codes(df: pd.DataFrame, column: str) -> np.ndarray:
    """Integer code per utterance for ``column``; -1 where the value is missing or the column is absent."""
    if column not in df.columns:
        return np.full(len(df), -1)
    values = df[column].where(df[column].notna() & (df[column].astype(str).str.strip() != ""), None)
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    return codes


def leakage_report(
    manifest: Manifest | pd.DataFrame,
    folds: Sequence[Fold],
    threshold: float = 0.9,
    reference: Literal["train", "train+validation"] = "train",
) -> pd.DataFrame:
    """One row per fold: what its test set shares with its training (reference) set.

    Columns: ``protocol, fold, n_train, n_test``; for each kind in speaker, session, dialog and
    script, ``<kind>_shared`` (distinct values in both) and ``<kind>_test_share`` (share of test
    utterances whose value is in the reference set; NaN when the manifest has no such field);
    ``text_exact_share``, ``text_near_share`` (similarity >= ``threshold`` on normalised text),
    ``text_same_label_share``, ``label_tvd``. See ``COLUMN_DESCRIPTIONS``. Empty normalised
    transcripts (only fillers or tags) never count as a text match.
    """
    if reference not in ("train", "train+validation"):
        raise ValueError(f"reference={reference!r}: use 'train' or 'train+validation'")
    df = _frame(manifest)
    # Text codes over distinct normalised transcripts; -1 for empty ones.
    norm = df["text"].map(normalize_text) if "text" in df.columns else pd.Series("", index=df.index)
    text_code, uniq = pd.factorize(norm.where(norm != "", None), use_na_sentinel=True)
    pairs = near_duplicate_pairs(list(uniq), threshold) if len(uniq) else np.zeros((0, 2), dtype=np.int64)
    label_code, labels = pd.factorize(df["label"].astype(str))
    # (text, label) as one code: a memorisable pair.
    text_label = np.where(text_code >= 0, text_code * len(labels) + label_code, -1)
    kind_codes = {k: _codes(df, k) for k in OVERLAP_KINDS}

    rows = []
    for fold in folds:
        ref_ids = list(fold.train) + (list(fold.validation) if reference == "train+validation" else [])
        ref = _positions(df, fold, "train", ref_ids)
        test = _positions(df, fold, "test", fold.test)
        row: dict[str, object] = dict(protocol=fold.protocol, fold=fold.name, n_train=len(ref), n_test=len(test))
        for kind, codes in kind_codes.items():
            if (codes < 0).all():
                row[f"{kind}_shared"], row[f"{kind}_test_share"] = np.nan, np.nan
                continue
            ref_set = np.unique(codes[ref][codes[ref] >= 0])
            test_vals = codes[test]
            hit = np.isin(test_vals, ref_set) & (test_vals >= 0)
            row[f"{kind}_shared"] = int(len(np.intersect1d(ref_set, test_vals[test_vals >= 0])))
            row[f"{kind}_test_share"] = float(hit.mean()) if len(test) else np.nan
        in_ref = np.zeros(len(uniq), dtype=bool)
        in_ref[text_code[ref][text_code[ref] >= 0]] = True
        near = in_ref.copy()
        if len(pairs):
            near[pairs[in_ref[pairs[:, 1]], 0]] = True
        tc = text_code[test]
        valid = tc >= 0
        exact_hit = np.zeros(len(test), dtype=bool)
        near_hit = np.zeros(len(test), dtype=bool)
        exact_hit[valid], near_hit[valid] = in_ref[tc[valid]], near[tc[valid]]
        tl_ref = np.unique(text_label[ref][text_label[ref] >= 0])
        same_label = np.isin(text_label[test], tl_ref) & (text_label[test] >= 0)
        n = max(len(test), 1)
        has_text = "text" in df.columns  # no transcripts at all: unknown, not "no leakage"
        row["text_exact_share"] = exact_hit.sum() / n if has_text else np.nan
        row["text_near_share"] = near_hit.sum() / n if has_text else np.nan
        row["text_same_label_share"] = same_label.sum() / n if has_text else np.nan
        p_ref = np.bincount(label_code[ref], minlength=len(labels)) / max(len(ref), 1)
        p_test = np.bincount(label_code[test], minlength=len(labels)) / n
        row["label_tvd"] = 0.5 * float(np.abs(p_ref - p_test).sum())
        rows.append(row)
    columns = ["protocol", "fold", "n_train", "n_test"]
    columns += [f"{k}_{s}" for k in OVERLAP_KINDS for s in ("shared", "test_share")]
    columns += ["text_exact_share", "text_near_share", "text_same_label_share", "label_tvd"]
    return pd.DataFrame(rows, columns=columns)


def share_columns(report: pd.DataFrame) -> list[str]:
    """The report's columns that are shares in [0, 1] (what the overlap heatmap shows)."""
    return [c for c in report.columns if c.endswith("_test_share") or c.startswith("text_") or c == "label_tvd"]


def transcript_repeats(manifest: Manifest | pd.DataFrame) -> pd.DataFrame:
    """Session x session counts of distinct normalised transcripts spoken in both sessions.

    The diagonal holds each session's number of distinct (non-empty) transcripts. Large
    off-diagonal counts mean leave-one-session-out test sets repeat training text.
    """
    df = _frame(manifest)
    if "session" not in df.columns or df["session"].isna().all():
        raise ValueError("transcript_repeats: the manifest has no 'session' field")
    t = pd.DataFrame({"session": df["session"].astype(str), "text": df["text"].map(normalize_text)})
    t = t[(t["text"] != "") & df["session"].notna().to_numpy()].drop_duplicates()
    incidence = pd.crosstab(t["text"], t["session"]).clip(upper=1)
    counts = incidence.T @ incidence
    counts.index.name, counts.columns.name = "session", "session"
    return counts.astype(int)


# ----------------------------------------------------------------------------- speaker ids
# The loader's utterance-id grammar (one definition of the IEMOCAP id), anchored for
# vectorised extraction; groups: session digits, marker letter, dialog part, speaker letter.
IEMOCAP_ID = re.compile("^" + UTT_ID_RE.pattern + "$")


@dataclass
class SpeakerRuleCheck:
    """The manifest's speaker field compared with both id rules, utterance by utterance.

    ``table`` has one row per IEMOCAP-shaped id: ``id, speaker, by_utterance, by_prefix,
    verdict`` where verdict is ``ok`` (speaker follows the utterance rule), ``prefix_rule``
    (speaker follows the dialog prefix, not the utterance: the loader bug) or ``neither``.
    """

    n_utterances: int
    table: pd.DataFrame

    @property
    def n_parsed(self) -> int:
        return len(self.table)

    @property
    def n_rules_differ(self) -> int:
        """Utterances where the two rules give different speakers (about half on IEMOCAP)."""
        return int((self.table["by_utterance"] != self.table["by_prefix"]).sum())

    def count(self, verdict: str) -> int:
        return int((self.table["verdict"] == verdict).sum())

    @property
    def ok(self) -> bool:
        """True when every parsed utterance's speaker follows the utterance rule."""
        return self.count("ok") == self.n_parsed

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                dict(
                    utterances=self.n_utterances,
                    iemocap_ids=self.n_parsed,
                    rules_differ=self.n_rules_differ,
                    speaker_ok=self.count("ok"),
                    speaker_from_prefix=self.count("prefix_rule"),
                    speaker_neither=self.count("neither"),
                )
            ]
        )

    def __str__(self) -> str:
        if self.n_parsed == 0:
            return f"speaker rule check: none of {self.n_utterances} ids is IEMOCAP-shaped; not applicable"
        bad = self.table.loc[self.table["verdict"] != "ok", "id"].tolist()
        text = (
            f"speaker rule check: {self.n_parsed} IEMOCAP-shaped ids; the dialog-prefix rule would "
            f"give a different speaker for {self.n_rules_differ} ({self.n_rules_differ / self.n_parsed:.1%}); "
            f"manifest speakers follow the utterance rule for {self.count('ok')}, the prefix rule for "
            f"{self.count('prefix_rule')}, neither for {self.count('neither')}"
        )
        return text + (f"; e.g. {bad[:3]}" if bad else "")


def speaker_rule_check(manifest: Manifest | pd.DataFrame) -> SpeakerRuleCheck:
    """Flag speaker ids parsed from the dialog prefix instead of the utterance id.

    The right rule is ``SesNN`` + the utterance's last ``[FM]`` letter; the wrong one, used by
    many public loaders, takes the letter after ``SesNN`` (the actor wearing markers) - see
    :func:`workbench.corpus.iemocap.speaker_from_id` and ``speaker_from_dialog_prefix``.

    >>> from workbench.testing import make_manifest, make_utterance
    >>> m = Manifest([make_utterance(id="Ses01F_impro01_M000"),
    ...               make_utterance(id="Ses01F_impro01_F000", speaker="Ses01F"),
    ...               make_utterance(id="Ses01F_impro01_M001", speaker="Ses01F")])
    >>> c = speaker_rule_check(m)
    >>> c.table["verdict"].tolist(), c.n_rules_differ, c.ok
    (['ok', 'ok', 'prefix_rule'], 2, False)
    """
    df = _frame(manifest)
    if "speaker" not in df.columns:
        raise ValueError("speaker rule check: the manifest has no 'speaker' field")
    ids = df["id"].astype(str)
    parts = ids.str.extract(IEMOCAP_ID)
    parsed = parts[0].notna()
    by_utt = "Ses" + parts[0] + parts[3]
    by_prefix = "Ses" + parts[0] + parts[1]
    speaker = df["speaker"].astype(str)
    verdict = np.where(speaker == by_utt, "ok", np.where(speaker == by_prefix, "prefix_rule", "neither"))
    table = pd.DataFrame(
        {"id": ids, "speaker": speaker, "by_utterance": by_utt, "by_prefix": by_prefix, "verdict": verdict}
    )[parsed.to_numpy()].reset_index(drop=True)
    return SpeakerRuleCheck(n_utterances=len(df), table=table)
