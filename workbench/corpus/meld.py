"""MELD loader: ``prepare_meld(root)`` reads the MELD.Raw release -> Manifest.

Layout read (either the split folders below, or the CSVs and media folders side by side in
``root`` as the release tarball unpacks them; ``root`` may also be the folder holding
``MELD.Raw``)::

    train/train_sent_emo.csv    train/train_splits/dia{D}_utt{U}.mp4
    dev/dev_sent_emo.csv        dev/dev_splits_complete/dia{D}_utt{U}.mp4
    test/test_sent_emo.csv      test/output_repeated_splits_test/dia{D}_utt{U}.mp4

CSV columns: ``Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,
Episode,StartTime,EndTime``. Conventions decided here:

* **id** ``{split}_dia{D}_utt{U}`` (dialogue ids restart in every split); **dialog**
  ``{split}_dia{D}``; **session** the Friends episode ``S{season:02d}E{episode:02d}``, so the
  leakage audit can see episodes shared between splits; **speaker** the character name as
  written (``Chandler``); gender is unknown (None); kind ``other``; **split** the official
  ``train``/``dev``/``test``.
* **label** the emotion word lower-cased (``neutral joy surprise anger sadness disgust
  fear``; scheme ``meld7``); the sentiment (``positive negative neutral``) is in
  ``extra["sentiment"]`` (scheme ``sentiment`` reads it).
* **text** with the real files' mojibake undone (``â€™`` -> ``’``) and typographic quotes,
  dashes and ellipses made ASCII (``’`` -> ``'``); the cell as written is in
  ``extra["text_raw"]``. Every CSV cell is kept, as written, in ``extra["row"]``.
* **times** ``StartTime``/``EndTime`` (``00:16:16,059`` or ``0:16:16,059``, i.e. h:mm:ss,ms
  in the episode) become ``extra["times"] = (start_s, end_s)``; they are informational
  (the clip is the utterance) and a malformed one is a warning, not a skip. Gaps in
  ``Sr No.`` are normal in the release and not reported.
* **audio**: each clip's audio (48 kHz AAC in the mp4) is decoded once with ffmpeg to a
  16 kHz mono wav in ``audio_cache`` (default ``<data_dir>/meld_audio/<split>/``), written
  atomically and reused when present; ``audio_path`` points at the wav, ``start`` is 0 and
  the duration is the wav's. The mp4 is in ``extra["media_path"]``.

Rows with an unterminated quote, an unknown emotion or sentiment, a malformed id, a
repeated id, a missing mp4 (the release lacks a few, e.g. ``dev dia110_utt7``) or an mp4
ffmpeg cannot decode are skipped and reported with the CSV file and 1-based line.

>>> normalise_text("I donâ€™t know\u2026 â€œreallyâ€\x9d")
'I don\\'t know... "really"'
>>> parse_time("0:16:16,059"), parse_time("00:16:16,059")
(976.059, 976.059)
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import soundfile as sf

from workbench import paths
from workbench.corpus.manifest import Manifest, ManifestError, Reporter, Utterance
from workbench.corpus.manifest_csv import read_csv_rows, require_columns
from workbench.corpus.media import MediaError, extract_audio
from workbench.corpus.registry import register_corpus

SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train_sent_emo.csv", "train_splits"),
    "dev": ("dev_sent_emo.csv", "dev_splits_complete"),
    "test": ("test_sent_emo.csv", "output_repeated_splits_test"),
}
COLUMNS = ("Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
           "Utterance_ID", "Season", "Episode", "StartTime", "EndTime")
EMOTIONS = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
SENTIMENTS = ("positive", "negative", "neutral")
SAMPLE_RATE = 16000

# ------------------------------------------------------------------ text normalisation
# The real CSVs hold UTF-8 text that was once decoded as cp1252 and re-encoded ("â€™" for
# "’"). Each byte of the original became one cp1252 character (undefined bytes such as 0x9d
# survive as the C1 control character), so a run "lead char + continuation chars" can be
# turned back into bytes and decoded as UTF-8. Runs that do not decode are left alone.
_CP1252_CONT = "".join(
    bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(0x80, 0xC0)
)
_CONT = "[" + re.escape(_CP1252_CONT) + "]"
_MOJIBAKE_RE = re.compile(f"[\u00c2-\u00df]{_CONT}|[\u00e0-\u00ef]{_CONT}{{2}}|[\u00f0-\u00f4]{_CONT}{{3}}")
_TYPOGRAPHIC = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u00a0": " ", "\u2026": "...",
})


def _to_byte(ch: str) -> int:
    try:
        return ch.encode("cp1252")[0]
    except UnicodeEncodeError:
        if ord(ch) < 256:
            return ord(ch)  # a byte cp1252 leaves undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d)
        raise


def _undo(match: re.Match[str]) -> str:
    s = match.group(0)
    try:
        return bytes(_to_byte(c) for c in s).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return s


def fix_mojibake(text: str) -> str:
    """Undo UTF-8-read-as-cp1252 damage (``â€™`` -> ``’``, ``Ã©`` -> ``é``); other text unchanged.

    >>> fix_mojibake("cafÃ© â€” ok"), fix_mojibake("café — ok")
    ('café — ok', 'café — ok')
    """
    return _MOJIBAKE_RE.sub(_undo, text)


def normalise_text(text: str) -> str:
    """Mojibake undone, typographic quotes/dashes/ellipses as ASCII, whitespace collapsed."""
    return " ".join(fix_mojibake(text).translate(_TYPOGRAPHIC).split())


_TIME_RE = re.compile(r"^(\d{1,2}):(\d{1,2}):(\d{1,2})[,.](\d{1,3})$")


def parse_time(value: str) -> float:
    """``h:mm:ss,mmm`` (leading zero optional) -> seconds; ValueError when malformed."""
    m = _TIME_RE.match(value.strip())
    if m is None:
        raise ValueError(f"malformed time {value!r} (expected h:mm:ss,mmm)")
    h, mi, s, frac = m.groups()
    if int(mi) >= 60 or int(s) >= 60:
        raise ValueError(f"malformed time {value!r} (minutes/seconds >= 60)")
    # milliseconds as an integer count, then one division, so 16.059 is the nearest float
    return (int(h) * 3600_000 + int(mi) * 60_000 + int(s) * 1000 + int(frac.ljust(3, "0"))) / 1000


# ------------------------------------------------------------------ layout
def find_split_files(root: str | Path, split: str) -> tuple[Path, Path]:
    """(CSV, media folder) of one split, in either layout; FileNotFoundError naming both tried."""
    root = Path(root)
    csv_name, media_name = SPLITS[split]
    for base in (root, root / "MELD.Raw"):
        for folder in (base / split, base):
            if (folder / csv_name).is_file():
                media = folder / media_name
                if not media.is_dir() and (base / media_name).is_dir():
                    media = base / media_name
                return folder / csv_name, media
    raise FileNotFoundError(f"MELD {split}: {csv_name} found neither at {root / split / csv_name} "
                            f"nor at {root / csv_name}")


# ------------------------------------------------------------------ prepare
def prepare_meld(
    root: str | Path,
    splits: Sequence[str] = ("train", "dev", "test"),
    *,
    audio_cache: str | Path | None = None,
    workers: int | None = None,
    strict: bool = False,
    progress: bool = False,
) -> Manifest:
    """Read MELD into a validated :class:`Manifest`, decoding audio into ``audio_cache``.

    root: the MELD.Raw folder (or its parent). splits: which of train/dev/test to read.
    audio_cache: where 16 kHz wavs go (default ``<data_dir>/meld_audio``). workers: parallel
    ffmpeg processes (default: CPU count, at most 8). strict: raise ValueError at the first
    problem instead of reporting it. progress: show a tqdm bar while decoding.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MELD root {root} does not exist or is not a folder")
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ValueError(f"splits: unknown MELD split(s) {bad}; known: {list(SPLITS)}")
    cache = Path(audio_cache) if audio_cache is not None else paths.data_dir() / "meld_audio"
    rep = Reporter(strict)
    pending: list[tuple[Path, int, dict[str, Any], Path, Path]] = []
    for split in splits:
        csv_path, media_dir = find_split_files(root, split)
        pending += _read_split(csv_path, media_dir, split, cache, rep)

    def decode(item: tuple[Path, int, dict[str, Any], Path, Path]) -> str | float:
        _, _, _, mp4, wav = item
        try:
            if not (wav.is_file() and wav.stat().st_size > 44):
                extract_audio(mp4, wav, SAMPLE_RATE)
            info = sf.info(str(wav))
        except (MediaError, RuntimeError, OSError) as e:
            return str(e)
        return info.frames / info.samplerate

    n_workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:  # ffmpeg runs outside the GIL
        results = pool.map(decode, pending)
        if progress:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(pending), desc="MELD audio")
        results = list(results)

    utts = []
    for (csv_path, line, fields, mp4, wav), got in zip(pending, results):
        if isinstance(got, str):
            rep.skip(csv_path, line, fields["id"], f"audio not decodable: {got}")
            continue
        if not got > 0:
            rep.skip(csv_path, line, fields["id"], f"decoded audio {wav} holds no samples")
            continue
        fields["extra"]["media_path"] = os.path.abspath(mp4)
        utts.append(Utterance(audio_path=os.path.abspath(wav), start=0.0, duration=got, **fields))
    return Manifest(utts, report=rep.report).validate()


def _read_split(csv_path: Path, media_dir: Path, split: str, cache: Path,
                rep: Reporter) -> list[tuple[Path, int, dict[str, Any], Path, Path]]:
    """Parse one split's CSV; returns (csv, line, Utterance fields, mp4, wav) per usable row."""
    header, rows = read_csv_rows(csv_path, report=rep.report, strict=rep.strict)
    require_columns(csv_path, header, COLUMNS)
    if not media_dir.is_dir():
        raise FileNotFoundError(f"MELD {split}: media folder {media_dir} does not exist")
    out = []
    first: dict[str, int] = {}
    for line, row in rows:
        if None in row:
            rep.skip(csv_path, line, row.get("Sr No.", "?"), "more cells than the header")
            continue
        try:
            dia, utt = int(row["Dialogue_ID"]), int(row["Utterance_ID"])
        except ValueError:
            rep.skip(csv_path, line, f"Sr No. {row['Sr No.']}",
                     f"malformed Dialogue_ID/Utterance_ID {row['Dialogue_ID']!r}/{row['Utterance_ID']!r}")
            continue
        utt_id = f"{split}_dia{dia}_utt{utt}"
        emotion = row["Emotion"].strip().lower()
        sentiment = row["Sentiment"].strip().lower()
        if emotion not in EMOTIONS:
            rep.skip(csv_path, line, utt_id, f"unknown emotion {row['Emotion']!r}")
            continue
        if sentiment not in SENTIMENTS:
            rep.skip(csv_path, line, utt_id, f"unknown sentiment {row['Sentiment']!r}")
            continue
        speaker = normalise_text(row["Speaker"])
        if not speaker:
            rep.skip(csv_path, line, utt_id, "empty speaker")
            continue
        if utt_id in first:
            rep.skip(csv_path, line, utt_id, f"duplicate id (first at line {first[utt_id]})")
            continue
        mp4 = media_dir / f"dia{dia}_utt{utt}.mp4"
        if not mp4.is_file():
            rep.skip(csv_path, line, utt_id, f"media file missing: {mp4}")
            continue
        first[utt_id] = line
        extra: dict[str, Any] = {"sentiment": sentiment, "text_raw": row["Utterance"],
                                 "row": {h: row[h] for h in header}, "source_line": line}
        try:
            extra["times"] = (parse_time(row["StartTime"]), parse_time(row["EndTime"]))
        except ValueError as e:
            rep.bad(csv_path, line, utt_id, f"{e}; extra['times'] left out")
        try:
            season, episode = int(row["Season"]), int(row["Episode"])
            session = f"S{season:02d}E{episode:02d}"
        except ValueError:
            rep.bad(csv_path, line, utt_id, f"malformed Season/Episode {row['Season']!r}/"
                    f"{row['Episode']!r}; session=None")
            session = None
        try:
            extra["sr_no"] = int(row["Sr No."])
        except ValueError:
            rep.bad(csv_path, line, utt_id, f"malformed Sr No. {row['Sr No.']!r}")
        fields = dict(
            id=utt_id, corpus="meld", session=session, dialog=f"{split}_dia{dia}",
            speaker=speaker, gender=None, kind="other", script=None,
            text=normalise_text(row["Utterance"]), label=emotion, split=split, extra=extra,
        )
        out.append((csv_path, line, fields, mp4, cache / split / f"dia{dia}_utt{utt}.wav"))
    if not rows:
        raise ManifestError(f"{csv_path}: no data rows")
    return out


@register_corpus("meld", "the MELD.Raw folder at root= (CSVs and mp4 clips; audio decoded once)",
                 root="the MELD.Raw folder")
def load_meld(root: str | Path, data_dir: str | Path | None = None, **options: Any) -> Manifest:
    """The ``meld`` corpus: :func:`prepare_meld` of ``root``, its audio decoded once into
    ``<data_dir>/meld_audio`` unless ``audio_cache=`` says where."""
    if "audio_cache" not in options and data_dir is not None:
        options["audio_cache"] = Path(data_dir) / "meld_audio"
    return prepare_meld(root, **options)
