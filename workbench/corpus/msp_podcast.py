"""MSP-Podcast loader: ``prepare_msp_podcast(root)`` reads the release -> Manifest.

Layout read::

    Labels/labels_consensus.csv     (older releases: labels_concensus.csv; or the JSON
                                     variant labels_consensus.json)
    Audios/<FileName>               (some releases: Audios/<subfolder>/<FileName>; searched)
    Transcripts/<stem>.txt          (optional; text is "" without it)

CSV columns ``FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set``; the JSON
maps each file name to an object with the other columns (a list of such objects carrying
``FileName`` is accepted too). Conventions decided here:

* **label** the EmoClass code as released: ``A`` angry, ``S`` sad, ``H`` happy, ``U``
  surprise, ``F`` fear, ``D`` disgust, ``C`` contempt, ``N`` neutral, ``O`` other, ``X`` no
  agreement (see :data:`EMO_CLASSES`). Schemes ``msp_podcast`` (the 8 emotions of the
  Odyssey 2024 challenge) and ``msp_podcast4`` (neu/hap/ang/sad, Pepino et al. 2020) map
  the codes to the workbench's class names (``neu hap ang sad sur fea dis con``). Rows
  without an EmoClass (hidden test labels) are skipped with that reason.
* **vad** ``(EmoVal, EmoAct, EmoDom)`` — valence, arousal, dominance on the 1..7 scale.
* **speaker** ``SpkrID`` as written. ``Unknown`` is kept as the speaker ``"Unknown"``: it
  is a marker, NOT a real speaker (it pools many people). Protocols grouping by speaker
  should not treat it as one person: drop those utterances from speaker-independent folds
  or give each its own group. ``official`` folds (the corpus's own splits) are unaffected.
* **gender** ``F``/``M`` from ``Female``/``Male``, None for ``Unknown``; raw in extra.
* **session** and **dialog** the podcast the segment comes from: the file name without its
  last ``_NNNN`` part (``MSP-PODCAST_0001_0008.wav`` -> ``MSP-PODCAST_0001``).
* **split** ``Split_Set`` as released: ``Train``, ``Development``, ``Test1``, ``Test2``,
  ``Test3``; any other value skips the row.
* duration from the wav header; kind ``other``.

>>> podcast_of("MSP-PODCAST_0001_0008.wav")
'MSP-PODCAST_0001'
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import soundfile as sf

from workbench.corpus.manifest import Manifest, ManifestError, Reporter, Utterance
from workbench.corpus.manifest_csv import decode_text, not_utf8_reason, read_csv_rows, require_columns
from workbench.corpus.registry import register_corpus

LABEL_FILES = ("labels_consensus.csv", "labels_concensus.csv", "labels_consensus.json",
               "labels_concensus.json")
COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set")
EMO_CLASSES = {
    "A": "angry", "S": "sad", "H": "happy", "U": "surprise", "F": "fear", "D": "disgust",
    "C": "contempt", "N": "neutral", "O": "other", "X": "no agreement",
}
SPLIT_SETS = ("Train", "Development", "Test1", "Test2", "Test3")
UNKNOWN_SPEAKER = "Unknown"
_GENDER = {"female": "F", "male": "M", "f": "F", "m": "M"}
AUDIO_SUFFIXES = (".wav", ".flac")


def podcast_of(file_name: str) -> str:
    """The podcast a segment file comes from: the stem without its last ``_part``."""
    stem = Path(file_name).stem
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def find_labels(root: str | Path) -> Path:
    """The consensus label file under ``root/Labels`` (CSV preferred over JSON)."""
    labels_dir = Path(root) / "Labels"
    for name in LABEL_FILES:
        if (labels_dir / name).is_file():
            return labels_dir / name
    raise FileNotFoundError(f"MSP-Podcast: none of {list(LABEL_FILES)} in {labels_dir}")


def _read_json(path: Path, rep: Reporter) -> list[tuple[int | None, dict[str, str]]]:
    # Decoded as the CSV readers decode: lines that are not UTF-8 are read as cp1252 and reported.
    text, not_utf8 = decode_text(path.read_bytes())
    if not_utf8:
        rep.bad(path, not_utf8[0], path.name, not_utf8_reason(not_utf8))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e
    except RecursionError:  # the json parser recurses once per nested [ or {
        raise ManifestError(f"{path}: JSON nested too deeply to be a label file (expected an object or a list "
                            "of objects, one per segment)") from None
    if isinstance(data, dict):
        records = [{"FileName": k, **v} if isinstance(v, dict) else {"FileName": k, None: v}
                   for k, v in data.items()]
    elif isinstance(data, list):
        records = [r if isinstance(r, dict) else {None: r} for r in data]
    else:
        raise ManifestError(f"{path}: expected an object or a list of objects at top level")
    out = []
    for r in records:
        out.append((None, {k: ("" if v is None or (isinstance(v, float) and math.isnan(v))
                               else str(v).strip()) if k is not None else v for k, v in r.items()}))
    return out


def _audio_index(audio_dir: Path, rep: Reporter) -> dict[str, Path]:
    """File name -> path for every audio file under ``Audios/`` (any depth)."""
    index: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(audio_dir):
        dirnames.sort()
        for name in sorted(filenames):
            if name.startswith("._") or not name.lower().endswith(AUDIO_SUFFIXES):
                continue
            p = Path(dirpath) / name
            if name in index:
                rep.note(p, None, name, f"same file name also at {index[name]}; first kept")
                continue
            index[name] = p
    return index


def prepare_msp_podcast(root: str | Path, *, strict: bool = False) -> Manifest:
    """Read an MSP-Podcast release into a validated :class:`Manifest` (see the module doc).

    root: the folder holding ``Labels/`` and ``Audios/``. strict: raise ValueError at the
    first problem instead of reporting it in ``manifest.report``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MSP-Podcast root {root} does not exist or is not a folder")
    labels = find_labels(root)
    rep = Reporter(strict)
    if labels.suffix == ".json":
        rows = _read_json(labels, rep)
        header = sorted({k for _, r in rows for k in r if k is not None})
    else:
        header, rows = read_csv_rows(labels, report=rep.report, strict=rep.strict)  # type: ignore[assignment]
    require_columns(labels, header, COLUMNS)
    audio_dir = root / "Audios"
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"MSP-Podcast: audio folder {audio_dir} does not exist")
    audio = _audio_index(audio_dir, rep)
    transcripts = root / "Transcripts"

    utts: list[Utterance] = []
    first: dict[str, int | None] = {}
    for i, (line, row) in enumerate(rows):
        name = row.get("FileName", "")
        item = name or f"record {i + 1}"
        if None in row:
            rep.skip(labels, line, item, "malformed record (extra cells or not an object)")
            continue
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            rep.skip(labels, line, item, f"record lacks {missing}")
            continue
        if not name:
            rep.skip(labels, line, item, "empty FileName")
            continue
        utt_id = Path(name).stem
        code = row["EmoClass"].strip().upper()
        if not code:
            rep.skip(labels, line, utt_id, "no EmoClass (hidden test labels)")
            continue
        if code not in EMO_CLASSES:
            rep.skip(labels, line, utt_id, f"unknown EmoClass {row['EmoClass']!r}")
            continue
        split = row["Split_Set"]
        if split not in SPLIT_SETS:
            rep.skip(labels, line, utt_id, f"unknown Split_Set {split!r}")
            continue
        try:
            vad = (float(row["EmoVal"]), float(row["EmoAct"]), float(row["EmoDom"]))
        except ValueError:
            rep.skip(labels, line, utt_id, f"malformed EmoVal/EmoAct/EmoDom {row['EmoVal']!r}/"
                     f"{row['EmoAct']!r}/{row['EmoDom']!r}")
            continue
        if not all(math.isfinite(v) for v in vad):  # float() accepts "nan", "Infinity", "1e309"
            rep.skip(labels, line, utt_id, f"non-finite EmoVal/EmoAct/EmoDom {row['EmoVal']!r}/"
                     f"{row['EmoAct']!r}/{row['EmoDom']!r}")
            continue
        if utt_id in first:
            at = f" (first at line {first[utt_id]})" if first[utt_id] is not None else ""
            rep.skip(labels, line, utt_id, f"duplicate file name{at}")
            continue
        wav = audio.get(name)
        if wav is None:
            rep.skip(labels, line, utt_id, f"audio file {name} not found under {audio_dir}")
            continue
        try:
            info = sf.info(str(wav))
            duration = info.frames / info.samplerate
        except Exception as e:  # libsndfile raises its own error types
            rep.skip(labels, line, utt_id, f"audio unreadable: {wav} ({type(e).__name__})")
            continue
        if not duration > 0:
            rep.skip(labels, line, utt_id, f"audio file {wav} holds no samples")
            continue
        first[utt_id] = line
        speaker = row["SpkrID"].strip() or UNKNOWN_SPEAKER
        if speaker.lower() == "unknown":
            speaker = UNKNOWN_SPEAKER
        text = ""
        txt = transcripts / f"{utt_id}.txt"
        if transcripts.is_dir():
            if txt.is_file():
                raw, not_utf8 = decode_text(txt.read_bytes(), "utf-8")
                if not_utf8:
                    rep.bad(txt, not_utf8[0], utt_id, not_utf8_reason(not_utf8))
                text = " ".join(raw.split())
            else:
                rep.note(txt, None, utt_id, "no transcript; text=''")
        podcast = podcast_of(name)
        utts.append(Utterance(
            id=utt_id, corpus="msp_podcast", session=podcast, dialog=podcast, speaker=speaker,
            gender=_GENDER.get(row["Gender"].strip().lower()), kind="other", script=None,
            audio_path=os.path.abspath(wav), start=0.0, duration=duration, text=text,
            label=code, vad=vad, split=split,
            extra={"row": {k: row[k] for k in row}, "source_line": line,
                   "emotion": EMO_CLASSES[code]},
        ))
    return Manifest(utts, report=rep.report).validate()


@register_corpus("msp_podcast", "an MSP-Podcast release at root= (Labels/, Audios/)",
                 root="the MSP-Podcast folder (Labels/, Audios/)")
def load_msp_podcast(root: str | Path, data_dir: str | Path | None = None, **options: Any) -> Manifest:
    """The ``msp_podcast`` corpus: :func:`prepare_msp_podcast` of ``root``."""
    return prepare_msp_podcast(root, **options)
