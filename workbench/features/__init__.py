"""Features: registered extractors, a content-addressed cache, ASR and alignment."""

from workbench.features.base import Extractor, ExtractorConfig, get_extractor, list_extractors, register_extractor

__all__ = ["Extractor", "ExtractorConfig", "get_extractor", "list_extractors", "register_extractor"]
