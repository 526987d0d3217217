"""Feature extractor registry: each extractor is a class with a dataclass config.

An extractor turns one utterance into a 2-D float32 array (steps, dim) whose step axis has a
known resolution: ``frame_seconds`` for frame-based features (0.01 for MFCC at a 10 ms hop),
or ``None`` when steps are words (text embeddings: row i is word i of the transcript).
The config's JSON form is part of the cache key, so changing any field re-extracts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping, Sequence

import numpy as np

from workbench.corpus.manifest import Utterance

Source = Literal["audio", "text", "visual"]


@dataclass(frozen=True)
class ExtractorConfig:
    """Base of every extractor config; subclasses add fields with defaults.

    ``omit_at_default`` names fields added after caches of the config existed: while such a
    field keeps its default it is left out of the JSON (and the hash), so those caches and the
    runs keyed by them stay valid.
    """

    omit_at_default: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for k in self.omit_at_default:
            if k in d and d[k] == defaults.get(k):
                del d[k]
        return json.dumps(d, sort_keys=True)

    def hash(self) -> str:
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:16]


class Extractor:
    """Base class. Subclasses set ``config_cls`` and ``source`` and implement ``frame_seconds``,
    ``dim`` and ``extract``; ``@register_extractor(name)`` sets ``name``. Everything else the
    feature cache and the recipes ask of an extractor is declared here with its default, so a
    new extractor is one file that overrides only what differs:

    - ``source``: which content the output depends on (and hence what the cache hashes): the
      audio file, the transcript, or the visual descriptor file (:meth:`source_path`);
    - ``batched`` and ``batch_size``: extract many utterances at once in the main process;
    - ``max_samples``: an upper bound on the output's steps (the cache's memory estimate);
    - :meth:`valid_length`: the steps that are not padding;
    - ``preparation`` and ``cpu_preparation``: how a model input of this extractor is prepared
      (:class:`~workbench.training.recipes.FeatureSpec` fields: ``normalise``, ``pool``,
      ``deltas``, ``config``) under the paper recipe, and what the CPU recipes change.
    """

    name: ClassVar[str]
    config_cls: ClassVar[type[ExtractorConfig]] = ExtractorConfig
    source: ClassVar[Source] = "audio"
    # True: the cache hands this extractor many utterances at once (``extract_batch``) in the
    # main process (torch MFCC, MiniLM) instead of fanning single files out to worker processes.
    batched: ClassVar[bool] = False
    # True: there are no default weights (a self-supervised speech model); the user names a
    # checkpoint, so a configuration without one cannot run (full grids leave such models out).
    needs_checkpoint: ClassVar[bool] = False
    # Utterances per extract_batch call of a batched extractor (the cache hands it 4x as many
    # per chunk); extractors whose config has a batch size return that.
    batch_size: int = 8
    # Most steps an output can have (a cropped waveform); None: no bound but the utterance's.
    max_samples: int | None = None
    # FeatureSpec fields for a model input read from this extractor (paper recipe), and the
    # changes the CPU recipes (demo, smoke) make to them. Default: used as extracted.
    preparation: ClassVar[Mapping[str, Any]] = {}
    cpu_preparation: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, config: ExtractorConfig | None = None):
        self.config = config if config is not None else self.config_cls()

    @property
    def frame_seconds(self) -> float | None:
        """Seconds per step of the output's first axis; None when steps are words."""
        raise NotImplementedError

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def extract(self, utt: Utterance) -> np.ndarray:
        """One utterance -> float32 array (steps, dim)."""
        raise NotImplementedError

    def extract_batch(self, utts: Sequence[Utterance]) -> list[np.ndarray]:
        """Many utterances at once; batched extractors (torch MFCC, MiniLM) override this."""
        return [self.extract(u) for u in utts]

    def valid_length(self, utt: Utterance) -> int | None:
        """Steps of ``utt``'s output that are not padding; None: all of them (the default)."""
        return None

    def source_path(self, utt: Utterance) -> str | None:
        """The file whose bytes the output of ``utt`` depends on (hashed into the cache key):
        the audio file for ``source="audio"``; none for ``"text"`` (the transcript itself is
        hashed). A ``"visual"`` extractor names its descriptor file (``visual.py`` does)."""
        if self.source == "visual":
            raise NotImplementedError(f"extractor {self.name!r} reads visual descriptors: say which file "
                                      "(override source_path)")
        return utt.audio_path if self.source == "audio" else None

    def store_key(self) -> str:
        """Name of this extractor's feature-cache store (``workbench.features.cache``).

        The config hash; when the config names a model ``checkpoint`` (a directory or a hub
        name), the checkpoint's weights hash goes in too, so two checkpoints never share cached
        features, even under one name. Resolving it may raise ``CheckpointError``.
        """
        checkpoint = getattr(self.config, "checkpoint", "")
        if not checkpoint:
            return self.config.hash()
        from workbench.features.checkpoints import checkpoint_identity

        key = f"{self.config.to_json()}\0{checkpoint_identity(checkpoint)}"
        return hashlib.sha1(key.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


_REGISTRY: dict[str, type[Extractor]] = {}


def register_extractor(name: str):
    """Class decorator: ``@register_extractor("mfcc120")``."""

    def deco(cls: type[Extractor]) -> type[Extractor]:
        if name in _REGISTRY:
            raise ValueError(f"extractor {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _import_all() -> None:
    import importlib

    for mod in ("audio", "prosody", "waveform", "text", "visual", "ssl"):
        importlib.import_module(f"workbench.features.{mod}")


def list_extractors() -> list[str]:
    _import_all()
    return sorted(_REGISTRY)


def extractor_class(name: str) -> type[Extractor]:
    """The registered class of extractor ``name`` (its ``source`` and ``config_cls``), nothing built."""
    _import_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown extractor {name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def takes_checkpoint(name: str) -> bool:
    """Whether extractor ``name``'s config has a ``checkpoint`` field (it runs a model the user supplies)."""
    return "checkpoint" in {f.name for f in dataclasses.fields(extractor_class(name).config_cls)}


def get_extractor(name: str, **config: Any) -> Extractor:
    """Build a registered extractor; unknown names or config fields raise naming them."""
    _import_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown extractor {name!r}; registered: {sorted(_REGISTRY)}")
    cls = _REGISTRY[name]
    known = {f.name for f in dataclasses.fields(cls.config_cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"extractor {name!r}: unknown config field(s) {unknown}; known: {sorted(known)}")
    return cls(cls.config_cls(**config))
