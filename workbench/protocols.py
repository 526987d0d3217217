"""Fold protocols: which utterances train, validate and test each model run.

On IEMOCAP the choice of folds changes conclusions (Pepino et al. 2020, section 4.1): the
usual leave-one-session-out folds put the same scripted lines in train and test, so text
models look far better than they are. Every protocol here is a named, seeded function of the
manifest, each :class:`Fold` says how its validation set was chosen, and folds are saved as
JSON so a result can cite exactly the split it was computed on.

Protocols (``make_folds(manifest, protocol, **options)``):

``loso_session``
    One fold per session: test on it, train on the others (the common IEMOCAP protocol).
    ``validation``: ``"none"`` (default), ``"other_speaker"`` (test on the first speaker of the
    held-out session in sorted order, validate on the other) or ``"random"`` (a stratified
    ``validation_share`` of train, by ``seed``).
``loso_speaker``
    One fold per speaker (10 on IEMOCAP). ``validation``: ``"none"``, ``"session_partner"``
    (the other speaker(s) of the test session, so no test dialog is in train) or ``"random"``.
``session_script``
    Pepino et al.: fold k tests on session k's improvised utterances plus its utterances of the
    held-out script(s); the held-out scripts are removed from training in every session, and
    session k's other scripted utterances are left out (same speakers as the test set).
    ``held_out``: a script name (default ``"script03"`` as in the paper), a list of names,
    ``"rotate"`` (session k holds out the k-th script, cycling) or ``"each"`` (one fold per
    session x script). ``validation``: ``"none"`` or ``"random"``.
``random_kfold``
    ``n_folds`` (default 5) label-stratified random folds by ``seed``; ``validation`` as above.
``tenfold_811``
    The 10-fold 8:1:1 protocol of AMH (Yoon et al. 2020) and MCSAN (Sun et al. 2021):
    ten label-stratified random parts; fold i tests on part i, validates on part i+1 (mod 10)
    and trains on the other eight.
``superb``
    SUPERB's emotion folds (s3prl ``downstream/emotion``): fold k tests on session k and trains
    on the others, minus a development set drawn as s3prl draws it: ``torch.manual_seed(seed)``
    then ``random_split`` of the training utterances into ``int((1 - valid_ratio) * n)`` train
    and the rest dev (``valid_ratio`` 0.2, ``seed`` 0: s3prl's values; the same draw in every
    fold, not stratified). The utterances are split in the order of s3prl's split files (the
    ``superb_order`` of the shipped standard list) when every id is in that list, so on the
    standard 5,531 the split is s3prl's exactly (with the torch release s3prl ran); otherwise in
    manifest order, which the fold's ``validation_rule`` says.
``official``
    The manifest's ``split`` column (MELD, MSP-Podcast): one fold per test split present
    (``test``, or ``test1``/``test2``), with ``train`` and ``dev``/``development``/
    ``validation`` as named.

>>> from workbench.testing import make_manifest
>>> m = make_manifest(sessions=5, seed=0)
>>> folds = make_folds(m, "loso_session")
>>> [f.name for f in folds], len(folds[0].test) + len(folds[0].train) == len(m)
(['Ses01', 'Ses02', 'Ses03', 'Ses04', 'Ses05'], True)
>>> f = make_folds(m, "session_script", held_out="script03")[0]
>>> any(m[i].script == "script03" for i in f.train)
False
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.corpus.manifest import Manifest
from workbench.io import atomic_write

FOLDS_FORMAT = "workbench-folds"
FOLDS_VERSION = 1

# Spellings of the official split names used by the corpora we load (MELD: train/dev/test;
# MSP-Podcast: Train/Development/Test1/Test2), mapped to the three roles.
_SPLIT_ROLES = {
    "train": "train",
    "training": "train",
    "dev": "validation",
    "development": "validation",
    "valid": "validation",
    "validation": "validation",
    "val": "validation",
    "test": "test",
    "test1": "test",
    "test2": "test",
    "test3": "test",
}

from workbench.errors import WorkbenchError


class ProtocolError(WorkbenchError, ValueError):
    """A protocol the manifest cannot support (missing fields, no test split, bad options)."""


@dataclass(frozen=True)
class Fold:
    """One train/validation/test split of a manifest, by utterance id.

    ``excluded`` lists ids of the manifest that this fold deliberately uses nowhere (e.g. the
    test session's other scripts under ``session_script``), so nothing is dropped silently.
    """

    name: str
    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]
    protocol: str
    options: dict[str, Any] = field(default_factory=dict)
    validation_rule: str = ""
    excluded: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Accept any sequence but store tuples, so a Fold is immutable and compares by value.
        for part in ("train", "validation", "test", "excluded"):
            object.__setattr__(self, part, tuple(getattr(self, part)))
        # Options are stored as their JSON form (tuples become lists), so a saved and reloaded
        # fold compares equal to the original and unserialisable options fail here, early.
        object.__setattr__(self, "options", json.loads(json.dumps(self.options)))

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for part in ("train", "validation", "test", "excluded"):
            d[part] = list(d[part])
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Fold":
        return Fold(**d)


# ----------------------------------------------------------------------------- helpers
# The fields folds and audits read; everything else (audio paths, words, votes) is left out.
TABLE_FIELDS = ("id", "session", "dialog", "speaker", "kind", "script", "label", "text", "split")


def manifest_table(manifest: Manifest | pd.DataFrame) -> pd.DataFrame:
    """The manifest's fold-relevant columns (``TABLE_FIELDS``) as a DataFrame; DataFrames are
    passed through as a copy."""
    if not isinstance(manifest, Manifest):
        return manifest.copy()
    return manifest.to_frame()[list(TABLE_FIELDS)]


def _table(manifest: Manifest | pd.DataFrame) -> pd.DataFrame:
    df = manifest_table(manifest)
    if "id" not in df.columns or "label" not in df.columns:
        raise ProtocolError("manifest table needs at least the columns 'id' and 'label'")
    if df["id"].duplicated().any():
        dup = df.loc[df["id"].duplicated(), "id"].tolist()[:5]
        raise ProtocolError(f"manifest has duplicate utterance ids, e.g. {dup}")
    return df.reset_index(drop=True)


def _require(df: pd.DataFrame, protocol: str, column: str, why: str) -> pd.Series:
    """The column with every value present, or a ValueError naming protocol and what is missing."""
    if column not in df.columns:
        raise ProtocolError(f"protocol {protocol!r}: the manifest has no {column!r} field ({why})")
    col = df[column]
    empty = col.isna() | (col.astype(str).str.strip() == "")
    if empty.any():
        ids = df.loc[empty, "id"].tolist()
        raise ProtocolError(
            f"protocol {protocol!r}: {len(ids)} utterance(s) lack a {column!r} value ({why}), "
            f"e.g. {ids[:5]}"
        )
    return col.astype(str)


def _stratified_parts(ids: Sequence[str], labels: Sequence[str], n: int, seed: int) -> list[list[str]]:
    """Split ids into ``n`` parts whose label counts differ by at most one per label.

    Each label's ids are shuffled and dealt round-robin; the dealer position carries over from
    one label to the next, so part sizes also differ by at most one overall.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[str]] = [[] for _ in range(n)]
    by_label: dict[str, list[str]] = {}
    for i, lab in zip(ids, labels):
        by_label.setdefault(lab, []).append(i)
    pos = 0
    for lab in sorted(by_label):
        members = by_label[lab]
        for k in rng.permutation(len(members)):
            parts[pos % n].append(members[k])
            pos += 1
    return parts


def _split_validation(
    df: pd.DataFrame, train: list[str], share: float, seed: int
) -> tuple[list[str], list[str]]:
    """Take a label-stratified ``share`` of ``train`` as validation; return (train, validation)."""
    if not 0 < share < 1:
        raise ProtocolError(f"validation_share={share}: must be strictly between 0 and 1")
    rng = np.random.default_rng(seed)
    labels = df.set_index("id").loc[train, "label"].astype(str)
    val: list[str] = []
    for lab in sorted(labels.unique()):
        members = labels.index[labels == lab].tolist()
        k = int(round(share * len(members)))
        val += [members[j] for j in rng.permutation(len(members))[:k]]
    val_set = set(val)
    return [i for i in train if i not in val_set], sorted(val)


def _check_nonempty(fold: Fold, need_validation: bool) -> Fold:
    for part in ("train", "test") + (("validation",) if need_validation else ()):
        if not getattr(fold, part):
            raise ProtocolError(
                f"protocol {fold.protocol!r}, fold {fold.name!r}: the {part} set is empty "
                f"with options {fold.options}"
            )
    return fold


def _ids(df: pd.DataFrame, mask: pd.Series) -> list[str]:
    return df.loc[mask, "id"].tolist()


# ----------------------------------------------------------------------------- protocols
def _loso_session(
    df: pd.DataFrame, validation: str = "none", validation_share: float = 0.1, seed: int = 0
) -> list[Fold]:
    """One fold per session: test on it, train on the others (the common IEMOCAP protocol)."""
    protocol = "loso_session"
    sessions = _require(df, protocol, "session", "folds are sessions")
    speakers = _require(df, protocol, "speaker", "needed for the speaker split") if validation == "other_speaker" else None
    opts = dict(validation=validation, validation_share=validation_share, seed=seed)
    folds = []
    for k, sess in enumerate(sorted(sessions.unique())):
        in_sess = sessions == sess
        train, val, test = _ids(df, ~in_sess), [], _ids(df, in_sess)
        if validation == "none":
            rule = "none: no validation set (fix epochs in advance)"
        elif validation == "other_speaker":
            spk = sorted(speakers[in_sess].unique())
            test = _ids(df, in_sess & (speakers == spk[0]))
            val = _ids(df, in_sess & (speakers != spk[0]))
            rule = f"other_speaker: test on {spk[0]}, validate on {', '.join(spk[1:]) or 'nobody'}"
        elif validation == "random":
            train, val = _split_validation(df, train, validation_share, seed + k)
            rule = f"random: stratified {validation_share:.0%} of train, seed {seed + k}"
        else:
            raise ProtocolError(
                f"protocol {protocol!r}: unknown validation {validation!r}; "
                "known: none, other_speaker, random"
            )
        fold = Fold(sess, train, val, test, protocol, opts, rule)
        folds.append(_check_nonempty(fold, validation != "none"))
    return folds


def _loso_speaker(
    df: pd.DataFrame, validation: str = "none", validation_share: float = 0.1, seed: int = 0
) -> list[Fold]:
    """One fold per speaker: test on that speaker, train on the others (10 folds on IEMOCAP)."""
    protocol = "loso_speaker"
    speakers = _require(df, protocol, "speaker", "folds are speakers")
    sessions = _require(df, protocol, "session", "needed for session_partner") if validation == "session_partner" else None
    opts = dict(validation=validation, validation_share=validation_share, seed=seed)
    folds = []
    for k, spk in enumerate(sorted(speakers.unique())):
        is_spk = speakers == spk
        train, val, test = _ids(df, ~is_spk), [], _ids(df, is_spk)
        if validation == "none":
            rule = "none: no validation set (fix epochs in advance)"
        elif validation == "session_partner":
            sess = set(sessions[is_spk])
            partner = ~is_spk & sessions.isin(sess)
            train, val = _ids(df, ~is_spk & ~partner), _ids(df, partner)
            partners = sorted(speakers[partner].unique())
            rule = f"session_partner: validate on {', '.join(partners) or 'nobody'} (same session as {spk})"
        elif validation == "random":
            train, val = _split_validation(df, train, validation_share, seed + k)
            rule = f"random: stratified {validation_share:.0%} of train, seed {seed + k}"
        else:
            raise ProtocolError(
                f"protocol {protocol!r}: unknown validation {validation!r}; "
                "known: none, session_partner, random"
            )
        fold = Fold(spk, train, val, test, protocol, opts, rule)
        folds.append(_check_nonempty(fold, validation != "none"))
    return folds


def _session_script(
    df: pd.DataFrame,
    held_out: str | Sequence[str] = "script03",
    validation: str = "none",
    validation_share: float = 0.1,
    seed: int = 0,
) -> list[Fold]:
    """Pepino et al.: per session, test on its improvised lines and held-out script; no test script in training."""
    protocol = "session_script"
    sessions = _require(df, protocol, "session", "folds are sessions")
    if "script" not in df.columns or "kind" not in df.columns:
        raise ProtocolError(f"protocol {protocol!r}: the manifest has no 'script'/'kind' fields")
    script = df["script"].where(df["script"].notna(), None)
    is_scripted = df["kind"].astype(str) == "scripted"
    if is_scripted.any() and script[is_scripted].isna().any():
        ids = df.loc[is_scripted & script.isna(), "id"].tolist()
        raise ProtocolError(f"protocol {protocol!r}: scripted utterances without a script name, e.g. {ids[:5]}")
    scripts = sorted(script[is_scripted].dropna().unique())
    if not scripts:
        raise ProtocolError(f"protocol {protocol!r}: the manifest has no scripted utterances (script field empty)")
    if validation not in ("none", "random"):
        raise ProtocolError(f"protocol {protocol!r}: unknown validation {validation!r}; known: none, random")
    session_names = sorted(sessions.unique())

    # Which script(s) each fold holds out: a list of (fold name, session, scripts).
    plan: list[tuple[str, str, list[str]]] = []
    if isinstance(held_out, str) and held_out == "rotate":
        plan = [(s, s, [scripts[k % len(scripts)]]) for k, s in enumerate(session_names)]
    elif isinstance(held_out, str) and held_out == "each":
        plan = [(f"{s}-{sc}", s, [sc]) for s in session_names for sc in scripts]
    else:
        names = [held_out] if isinstance(held_out, str) else list(held_out)
        unknown = [n for n in names if n not in scripts]
        if unknown or not names:
            raise ProtocolError(
                f"protocol {protocol!r}: held_out={held_out!r} names no script of the manifest "
                f"{unknown or ''}; known: {scripts} or 'rotate'/'each'"
            )
        plan = [(s, s, names) for s in session_names]

    opts = dict(held_out=held_out, validation=validation, validation_share=validation_share, seed=seed)
    folds = []
    for k, (name, sess, out) in enumerate(plan):
        in_sess = sessions == sess
        held = is_scripted & script.isin(out)
        if not (in_sess & held).any():
            raise ProtocolError(
                f"protocol {protocol!r}, fold {name!r}: session {sess} has no utterance of "
                f"held-out script(s) {out}; choose held_out among the scripts it has: "
                f"{sorted(script[in_sess & is_scripted].dropna().unique())}"
            )
        test_mask = in_sess & (~is_scripted | held)
        train_mask = ~in_sess & ~held
        excluded_mask = ~test_mask & ~train_mask
        train, val = _ids(df, train_mask), []
        rule = "none: no validation set (fix epochs in advance)"
        if validation == "random":
            train, val = _split_validation(df, train, validation_share, seed + k)
            rule = f"random: stratified {validation_share:.0%} of train, seed {seed + k}"
        fold = Fold(
            name, train, val, _ids(df, test_mask), protocol, {**opts, "fold_held_out": out}, rule,
            excluded=_ids(df, excluded_mask),
        )
        folds.append(_check_nonempty(fold, validation != "none"))
    return folds


def _random_kfold(
    df: pd.DataFrame, n_folds: int = 5, validation: str = "none", validation_share: float = 0.1, seed: int = 0
) -> list[Fold]:
    """Label-stratified random folds (``n_folds``, default 5): speakers and scripts leak across folds."""
    protocol = "random_kfold"
    if n_folds < 2:
        raise ProtocolError(f"protocol {protocol!r}: n_folds={n_folds} must be at least 2")
    if validation not in ("none", "random"):
        raise ProtocolError(f"protocol {protocol!r}: unknown validation {validation!r}; known: none, random")
    parts = _stratified_parts(df["id"].tolist(), df["label"].astype(str).tolist(), n_folds, seed)
    opts = dict(n_folds=n_folds, validation=validation, validation_share=validation_share, seed=seed)
    order = {i: n for n, i in enumerate(df["id"])}
    folds = []
    for k in range(n_folds):
        test = sorted(parts[k], key=order.__getitem__)
        train = sorted((i for j, p in enumerate(parts) if j != k for i in p), key=order.__getitem__)
        val: list[str] = []
        rule = "none: no validation set (fix epochs in advance)"
        if validation == "random":
            train, val = _split_validation(df, train, validation_share, seed + 1000 + k)
            rule = f"random: stratified {validation_share:.0%} of train, seed {seed + 1000 + k}"
        fold = Fold(f"fold{k + 1:02d}", train, val, test, protocol, opts, rule)
        folds.append(_check_nonempty(fold, validation != "none"))
    return folds


def _tenfold_811(df: pd.DataFrame, n_folds: int = 10, seed: int = 0) -> list[Fold]:
    """AMH's and MCSAN's 10-fold 8:1:1 random split: test part i, validate part i+1, train on the rest."""
    protocol = "tenfold_811"
    if n_folds < 3:
        raise ProtocolError(f"protocol {protocol!r}: n_folds={n_folds} must be at least 3")
    parts = _stratified_parts(df["id"].tolist(), df["label"].astype(str).tolist(), n_folds, seed)
    order = {i: n for n, i in enumerate(df["id"])}
    folds = []
    for k in range(n_folds):
        v = (k + 1) % n_folds
        train = sorted((i for j, p in enumerate(parts) if j not in (k, v) for i in p), key=order.__getitem__)
        rule = f"next_part: validate on part {v + 1} of {n_folds} (stratified random parts, seed {seed})"
        fold = Fold(
            f"fold{k + 1:02d}", train, sorted(parts[v], key=order.__getitem__),
            sorted(parts[k], key=order.__getitem__), protocol, dict(n_folds=n_folds, seed=seed), rule,
        )
        folds.append(_check_nonempty(fold, True))
    return folds


def _superb_positions(ids: pd.Series) -> tuple[list[int], bool]:
    """Row positions of ``ids`` in the order of s3prl's split files, and whether that order is
    exact (every id in the shipped list); ids outside it follow, in manifest order."""
    from workbench.corpus.standard import load_standard

    standard = load_standard()
    known = ids.map(dict(zip(standard["id"], standard["superb_order"])))
    keys = np.where(known.notna(), known, len(standard) + np.arange(len(ids)))
    return np.argsort(keys, kind="stable").tolist(), bool(known.notna().all())


def _superb(df: pd.DataFrame, valid_ratio: float = 0.2, seed: int = 0) -> list[Fold]:
    """SUPERB's emotion folds: test on one session, dev a random 20 % of the training utterances as s3prl draws it."""
    protocol = "superb"
    import torch  # s3prl draws the dev set with torch's generator; numpy cannot give the same draw

    sessions = _require(df, protocol, "session", "folds are sessions")
    if not 0 < valid_ratio < 1:
        raise ProtocolError(f"protocol {protocol!r}: valid_ratio={valid_ratio} must be strictly between 0 and 1")
    listing, exact = _superb_positions(df["id"])
    where = "s3prl's split-file order" if exact else "manifest order (not every id is in SUPERB's list)"
    opts = dict(valid_ratio=valid_ratio, seed=seed)
    folds = []
    for sess in sorted(sessions.unique()):
        in_sess = sessions == sess
        pool = [k for k in listing if not in_sess.iloc[k]]  # s3prl's train_meta_data.json order
        n = len(pool)
        n_train = int((1 - valid_ratio) * n)  # s3prl: trainlen = int((1 - valid_ratio) * len(dataset))
        # torch.manual_seed(seed); random_split(dataset, [n_train, n - n_train]) draws this permutation
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
        is_dev = df.index.isin([pool[j] for j in perm[n_train:]])  # df's index is the row position
        rule = (f"superb: s3prl's random_split of the {n} training utterances in {where}: "
                f"{n - n_train} ({valid_ratio:.0%}) to dev, torch seed {seed}")
        fold = Fold(sess, _ids(df, ~in_sess & ~is_dev), _ids(df, is_dev), _ids(df, in_sess), protocol, opts, rule)
        folds.append(_check_nonempty(fold, True))
    return folds


def _official(df: pd.DataFrame) -> list[Fold]:
    """The manifest's own ``split`` column (MELD, MSP-Podcast): one fold per test split."""
    protocol = "official"
    split = _require(df, protocol, "split", "the official protocol uses the corpus's own splits")
    norm = split.str.strip().str.lower()
    unknown = sorted(set(split[~norm.isin(_SPLIT_ROLES)]))
    if unknown:
        raise ProtocolError(f"protocol {protocol!r}: unknown split value(s) {unknown}; known: {sorted(_SPLIT_ROLES)}")
    role = norm.map(_SPLIT_ROLES)
    tests = sorted(norm[role == "test"].unique())
    if not tests:
        raise ProtocolError(f"protocol {protocol!r}: the split column has no test split (values: {sorted(set(split))})")
    folds = []
    for t in tests:
        fold = Fold(
            t, _ids(df, role == "train"), _ids(df, role == "validation"), _ids(df, norm == t),
            protocol, {}, "official: the corpus's own development split",
            excluded=_ids(df, (role == "test") & (norm != t)),
        )
        folds.append(_check_nonempty(fold, False))
    return folds


PROTOCOLS: dict[str, Callable[..., list[Fold]]] = {
    "loso_session": _loso_session,
    "loso_speaker": _loso_speaker,
    "session_script": _session_script,
    "random_kfold": _random_kfold,
    "tenfold_811": _tenfold_811,
    "superb": _superb,
    "official": _official,
}


def list_protocols() -> dict[str, str]:
    """Every registered protocol: name -> its one-line description (the first line of its docstring)."""
    return {name: (fn.__doc__ or "").strip().split("\n")[0] for name, fn in PROTOCOLS.items()}


def check_protocol(protocol: str, options: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`ProtocolError` for an unknown protocol or an option it does not take
    (before any data is read: callers check a request before generating a corpus)."""
    if protocol not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {protocol!r}; known: {sorted(PROTOCOLS)} (`workbench list protocols`)")
    accepted = [p for p in inspect.signature(PROTOCOLS[protocol]).parameters if p != "df"]
    unknown = sorted(set(options or {}) - set(accepted))
    if unknown:
        raise ProtocolError(f"protocol {protocol!r}: unknown option(s) {unknown}; accepted: {accepted}")


def make_folds(manifest: Manifest | pd.DataFrame, protocol: str, **options: Any) -> list[Fold]:
    """Build the folds of ``protocol`` over ``manifest`` (see the module docstring for options).

    Deterministic: the same manifest, protocol and options (``seed`` included) give the same
    folds. Raises ValueError naming the protocol, the fold and what is missing when the
    manifest lacks a needed field or an option leaves a fold empty.
    """
    check_protocol(protocol, options)
    fn = PROTOCOLS[protocol]
    df = _table(manifest)
    if len(df) == 0:
        raise ProtocolError(f"protocol {protocol!r}: the manifest is empty")
    return fn(df, **options)


# ----------------------------------------------------------------------------- files
def save_folds(folds: Sequence[Fold], path: str | Path) -> Path:
    """Write folds as JSON atomically, so a run can cite the exact split it used."""
    payload = {
        "format": FOLDS_FORMAT,
        "version": FOLDS_VERSION,
        "folds": [f.to_dict() for f in folds],
    }

    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")

    return atomic_write(Path(path), write)


def load_folds(path: str | Path) -> list[Fold]:
    """Read folds written by :func:`save_folds`."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ProtocolError(f"{path}:{e.lineno}: not a folds file ({e.msg})") from e
    if not isinstance(payload, dict) or payload.get("format") != FOLDS_FORMAT:
        raise ProtocolError(f"{path}: not a {FOLDS_FORMAT} file")
    if payload.get("version") != FOLDS_VERSION:
        raise ProtocolError(f"{path}: folds format version {payload.get('version')}, expected {FOLDS_VERSION}")
    try:
        return [Fold.from_dict(d) for d in payload["folds"]]
    except (KeyError, TypeError) as e:
        raise ProtocolError(f"{path}: malformed fold record ({e})") from e


def folds_summary(folds: Sequence[Fold]) -> pd.DataFrame:
    """One row per fold: protocol, name, train/validation/test/excluded sizes and validation rule."""
    return pd.DataFrame(
        [
            dict(protocol=f.protocol, fold=f.name, **f.sizes, excluded=len(f.excluded), validation_rule=f.validation_rule)
            for f in folds
        ],
        columns=["protocol", "fold", "train", "validation", "test", "excluded", "validation_rule"],
    )
