"""A small ctypes wrapper of libespeak-ng (bundled by the ``espeakng-loader`` wheel).

It synthesises one string to 16 kHz float32 audio plus word timings reconciled with the
whitespace tokens of the string. The engine is initialised lazily, once per process (its state
is global to the C library, so every worker process of a pool gets its own).

espeak reports only word *onsets* (``espeakEVENT_WORD``: ``audio_position`` in ms,
``text_position`` as a 1-based character offset) and an END event; its words do not map 1:1 onto
whitespace tokens ("I am" can give one event, "can't" reports length 3). :func:`reconcile_words`
turns events into one ``(start, end)`` span per token with this documented rule:

1. each event is assigned to the token whose characters contain ``text_position - 1`` (an event
   inside whitespace goes to the next token); a token keeps its earliest event;
2. a token's raw span runs from its onset to the next assigned onset (or the END event);
3. tokens without an event share the span of the nearest preceding token that has one, split
   evenly in order (tokens before the first event share the first event's span);
4. optionally the trailing low-energy part of each span is trimmed (see :func:`trim_spans`),
   so pauses between words show up as gaps.

Determinism: breathy voices draw noise from espeak's generator, seeded per call (``seed``); and
libespeak-ng keeps internal state between calls (pitch-flutter phase, echo
buffers) that ``espeak_Initialize`` does not reset, so the same call can give slightly different
samples later in a process. A sequence of calls is reproducible only from a fresh process;
:mod:`workbench.corpus.synthetic` therefore synthesises each dialog in its own child process.

>>> audio, words = synthesize("I am here.")      # doctest: +SKIP
>>> [w.token for w in words]                     # doctest: +SKIP
['I', 'am', 'here.']
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass

import numpy as np

from workbench.errors import WorkbenchError

SAMPLE_RATE = 16000  # output rate of :func:`synthesize`

# espeak_AUDIO_OUTPUT, espeak_EVENT_TYPE, espeak_PARAMETER, flags (speak_lib.h, 1.52).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_END, _EVENT_MSG_TERMINATED = 0, 1, 5, 6
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass(frozen=True)
class WordEvent:
    """A raw espeak word event: onset in seconds and the 1-based character span it reports."""

    onset: float
    text_position: int
    length: int


@dataclass(frozen=True)
class WordSpan:
    """One whitespace token of the input with its time span in seconds (16 kHz timeline)."""

    token: str
    start: float
    end: float


class EspeakError(WorkbenchError, RuntimeError):
    """libespeak-ng could not be loaded, initialised or asked to speak."""


class _Engine:
    """Process-wide espeak state: the library handle, its rate and the collecting callback."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        # espeak_Initialize takes the folder that *contains* espeak-ng-data on some builds and
        # the data folder itself on others; the wheel's path works directly with 1.52.
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, ctypes.c_char_p(data), 0)
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (returned {rate}) with data {data!r}")
        self.rate = int(rate)
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[int, int, int, int]] = []
        self._cb = _CALLBACK(self._collect)  # keep a reference: C holds only a raw pointer
        self.lib.espeak_SetSynthCallback(self._cb)
        self.lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint,
                                          ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                          ctypes.c_void_p, ctypes.c_void_p]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lock = threading.Lock()

    def _collect(self, wav, n, events) -> int:  # noqa: ANN001 - ctypes callback signature
        if n > 0 and wav:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while True:
            ev = events[i]
            if ev.type == _EVENT_LIST_TERMINATED:
                break
            if ev.type in (_EVENT_WORD, _EVENT_END, _EVENT_MSG_TERMINATED):
                self.events.append((ev.type, ev.audio_position, ev.text_position, ev.length))
            i += 1
        return 0  # 0 = continue synthesis


_ENGINE: _Engine | None = None
_ENGINE_PID: int | None = None


def _engine() -> _Engine:
    global _ENGINE, _ENGINE_PID
    if _ENGINE is None or _ENGINE_PID != os.getpid():
        _ENGINE, _ENGINE_PID = _Engine(), os.getpid()
    return _ENGINE


def synthesize_raw(text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50,
                   pitch_range: int = 50, volume: int = 100,
                   wordgap: int = 0,
                   seed: int = 0) -> tuple[np.ndarray, int, list[WordEvent], float]:
    """Speak ``text`` with espeak's own sample rate.

    Returns ``(int16 audio, sample_rate, word events, end time in s)``. ``rate`` is words per
    minute (80-450), ``pitch`` and ``pitch_range`` 0-99, ``volume`` 0-200, ``wordgap`` extra
    pause between words in units of 10 ms. ``seed`` seeds espeak's own noise generator
    (breathy voices such as ``+f2`` add random aspiration noise).
    """
    eng = _engine()
    with eng.lock:
        if eng.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak voice {voice!r} not found")
        # Parameters must be set after the voice: choosing a voice resets them.
        for param, value, lo, hi in ((_RATE, rate, 80, 450), (_VOLUME, volume, 0, 200),
                                     (_PITCH, pitch, 0, 99), (_RANGE, pitch_range, 0, 99),
                                     (_WORDGAP, wordgap, 0, 100)):
            eng.lib.espeak_SetParameter(param, int(min(max(value, lo), hi)), 0)
        eng.lib.espeak_ng_SetRandSeed(int(seed))
        eng.chunks, eng.events = [], []
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        err = eng.lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise EspeakError(f"espeak_Synth failed with code {err} for text {text!r}")
        audio = np.concatenate(eng.chunks) if eng.chunks else np.zeros(0, np.int16)
        raw_events = list(eng.events)
    words = [WordEvent(pos / 1000.0, tp, ln) for kind, pos, tp, ln in raw_events
             if kind == _EVENT_WORD]
    ends = [pos / 1000.0 for kind, pos, _, _ in raw_events if kind == _EVENT_END]
    end = ends[-1] if ends else len(audio) / eng.rate
    return audio.astype(np.int16), eng.rate, words, min(end, len(audio) / eng.rate)


def token_offsets(text: str) -> list[tuple[str, int, int]]:
    """Whitespace tokens of ``text`` with 0-based ``[start, end)`` character offsets.

    >>> token_offsets("I  am here.")
    [('I', 0, 1), ('am', 3, 5), ('here.', 6, 11)]
    """
    out, i, n = [], 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        j = i
        while j < n and not text[j].isspace():
            j += 1
        if j > i:
            out.append((text[i:j], i, j))
        i = j
    return out


def reconcile_words(text: str, events: list[WordEvent], end: float) -> list[WordSpan]:
    """One span per whitespace token from espeak word onsets (rules in the module docstring).

    >>> ev = [WordEvent(0.10, 1, 1), WordEvent(0.50, 6, 5)]    # "I am" gave one event
    >>> [(w.token, round(w.start, 2), round(w.end, 2)) for w in
    ...  reconcile_words("I am here.", ev, 0.9)]
    [('I', 0.1, 0.3), ('am', 0.3, 0.5), ('here.', 0.5, 0.9)]
    """
    toks = token_offsets(text)
    if not toks:
        return []
    onset: list[float | None] = [None] * len(toks)
    for ev in events:
        pos = ev.text_position - 1
        k = next((i for i, (_, s, e) in enumerate(toks) if pos < e), None)
        if k is None:
            continue
        if onset[k] is None or ev.onset < onset[k]:
            onset[k] = ev.onset
    # Onsets must not go backwards (espeak can report a clause's first word late).
    known = [i for i, o in enumerate(onset) if o is not None]
    if not known:  # no events at all: spread the tokens evenly over the audio
        step = end / len(toks)
        return [WordSpan(t, i * step, (i + 1) * step) for i, (t, _, _) in enumerate(toks)]
    for a, b in zip(known, known[1:]):
        onset[b] = max(onset[b], onset[a])
    # A group = one token with an onset plus the event-less tokens after it; tokens before the
    # first event join the first group.
    groups: list[list[int]] = [list(range(known[0] + 1))]
    for i in range(known[0] + 1, len(toks)):
        if onset[i] is not None:
            groups.append([i])
        else:
            groups[-1].append(i)
    spans: list[WordSpan] = []
    for g, members in enumerate(groups):
        start = onset[known[g]]
        stop = onset[known[g + 1]] if g + 1 < len(groups) else end
        stop = max(stop, start)
        step = (stop - start) / len(members)
        for j, i in enumerate(members):
            spans.append(WordSpan(toks[i][0], start + j * step, start + (j + 1) * step))
    return spans


def trim_spans(audio: np.ndarray, sr: int, spans: list[WordSpan], rel_db: float = -30.0,
               hop: float = 0.01, min_dur: float = 0.05) -> list[WordSpan]:
    """Pull each span's end back over trailing frames quieter than ``rel_db`` below the peak.

    Frames are ``hop`` seconds; a span keeps at least ``min_dur`` seconds. Cheap (one RMS pass),
    and it makes inter-word pauses visible as gaps for the alignment files.
    """
    h = int(round(hop * sr))
    if len(audio) < h or not spans:
        return spans
    n = len(audio) // h
    rms = np.sqrt(np.mean(audio[: n * h].astype(np.float64).reshape(n, h) ** 2, axis=1))
    thr = rms.max() * 10 ** (rel_db / 20)
    out = []
    for w in spans:
        a = int(w.start / hop)
        b = min(int(np.ceil(w.end / hop)), n)
        lo = a + int(np.ceil(min_dur / hop))
        while b > lo and rms[b - 1] < thr:
            b -= 1
        out.append(WordSpan(w.token, w.start, min(w.end, max(b * hop, w.start + min_dur))))
    return out


def synthesize(text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50,
               pitch_range: int = 50, volume: int = 100,
               wordgap: int = 0, trim: bool = True,
               seed: int = 0) -> tuple[np.ndarray, list[WordSpan]]:
    """Speak ``text``: returns (float32 audio in [-1, 1] at 16 kHz, one span per whitespace token).

    Parameters as in :func:`synthesize_raw`. Spans are in seconds from the start of the audio.
    """
    import soxr

    raw, sr, events, end = synthesize_raw(text, voice, rate, pitch, pitch_range, volume, wordgap,
                                          seed)
    audio = raw.astype(np.float32) / 32768.0
    if sr != SAMPLE_RATE and len(audio):
        audio = soxr.resample(audio, sr, SAMPLE_RATE, quality="HQ").astype(np.float32)
    spans = reconcile_words(text, events, end)
    if trim:
        spans = trim_spans(audio, SAMPLE_RATE, spans)
    return audio, spans
