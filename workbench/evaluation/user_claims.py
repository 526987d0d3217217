"""A researcher's own claims, from a YAML or JSON file, judged by the same rule as the papers'.

A file holds a list of claims, each either a comparison of two conditions::

    - id: mine.my_model_beats_xu        # any id; it names the claim in the ledger
      text: my model beats Xu's on oracle text
      a: {model: my_model}              # a registered model, with optional variant,
      b: {model: xu_alignment}          # text_source, protocol and label_scheme
      relation: beats                   # beats (default) | worse | similar
      metric: ua                        # ua (default) | wa | av_auc

    - id: mine.fusion_similar
      text: my two fusions perform alike
      a: {model: pepino_early, variant: warm_start}
      b: {model: pepino_early, variant: cold_start}
      relation: similar
      margin: 0.01                      # required for similar: the half-width, in the metric's units

or a weighted sum (``terms: [{weight: 1, model: ...}, {weight: -1, model: ...}, ...]``) for an
interaction. Every model and variant is checked against the registry before anything trains;
a mistake is one line naming the file, the claim and the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.evaluation.claims import Claim, ClaimError, Condition

_CONDITION_FIELDS = {"model", "variant", "text_source", "protocol", "label_scheme"}
_CLAIM_FIELDS = {"id", "text", "a", "b", "terms", "relation", "margin", "metric", "source", "quote", "note"}


def _condition(raw: Any, where: str) -> Condition:
    from workbench.models import get_card, list_models

    if not isinstance(raw, Mapping) or "model" not in raw:
        raise ClaimError(f"{where}: a condition is a mapping with at least 'model', got {raw!r}")
    extra = set(raw) - _CONDITION_FIELDS - {"weight"}
    if extra:
        raise ClaimError(f"{where}: unknown condition field(s) {sorted(extra)}; fields: {sorted(_CONDITION_FIELDS)}")
    model = str(raw["model"])
    if model not in list_models():
        raise ClaimError(f"{where}: unknown model {model!r}; registered: {', '.join(list_models())}")
    variant = str(raw.get("variant") or "")
    if variant and variant not in get_card(model).variants:
        raise ClaimError(f"{where}: model {model} has no variant {variant!r}; its variants: "
                         f"{', '.join(get_card(model).variants) or 'none'}")
    text_source = str(raw.get("text_source", "oracle"))
    if text_source not in ("oracle", "asr"):
        raise ClaimError(f"{where}: text_source must be oracle or asr, got {text_source!r}")
    return Condition(model, variant, text_source, raw.get("protocol"), raw.get("label_scheme"))


def claim_from_mapping(raw: Mapping[str, Any], where: str = "claim") -> Claim:
    """One claim from its mapping (the file format above); ``where`` prefixes every error."""
    if not isinstance(raw, Mapping):
        raise ClaimError(f"{where}: a claim is a mapping, got {type(raw).__name__}")
    where = f"{where} ({raw.get('id', 'no id')})"
    extra = set(raw) - _CLAIM_FIELDS
    if extra:
        raise ClaimError(f"{where}: unknown field(s) {sorted(extra)}; fields: {sorted(_CLAIM_FIELDS)}")
    if not raw.get("id"):
        raise ClaimError(f"{where}: every claim needs an id")
    if ("terms" in raw) == ("a" in raw or "b" in raw):
        raise ClaimError(f"{where}: give either a and b, or terms")
    if "terms" in raw:
        if not isinstance(raw["terms"], list) or len(raw["terms"]) < 2:
            raise ClaimError(f"{where}: terms is a list of 2 or more conditions with weights")
        terms = []
        for i, t in enumerate(raw["terms"]):
            w = t.get("weight") if isinstance(t, Mapping) else None
            if not isinstance(w, (int, float)) or not math.isfinite(w):
                raise ClaimError(f"{where}: terms[{i}] needs a finite numeric weight")
            terms.append((float(w), _condition(t, f"{where}: terms[{i}]")))
    else:
        if "a" not in raw or "b" not in raw:
            raise ClaimError(f"{where}: a comparison needs both a and b")
        terms = [(1.0, _condition(raw["a"], f"{where}: a")), (-1.0, _condition(raw["b"], f"{where}: b"))]
    relation = raw.get("relation", "beats")
    if relation not in ("beats", "worse", "similar"):
        raise ClaimError(f"{where}: relation must be beats, worse or similar, got {relation!r}")
    margin = raw.get("margin", math.nan)
    if relation == "similar":
        if not isinstance(margin, (int, float)) or not (math.isfinite(margin) and margin > 0):
            raise ClaimError(f"{where}: a similar claim needs a positive margin (in the metric's units), got {margin!r}")
    elif "margin" in raw:
        raise ClaimError(f"{where}: margin is for similar claims only")
    metric = raw.get("metric", "ua")
    if metric not in ("ua", "wa", "av_auc"):
        raise ClaimError(f"{where}: metric must be ua, wa or av_auc, got {metric!r}")
    return Claim(str(raw["id"]), "user", str(raw.get("source", "user")), str(raw.get("text", raw["id"])),
                 tuple(terms), metric, note=str(raw.get("note", "")), relation=relation, margin=float(margin),
                 quote=str(raw.get("quote", "")))


def load_claims(path: str | Path) -> list[Claim]:
    """The claims of a YAML (``.yaml``/``.yml``) or JSON file; one-line errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ClaimError(f"{path}: cannot read the claims file ({e})") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
    except Exception as e:  # yaml and json raise their own error types; both are a user mistake
        raise ClaimError(f"{path}: not valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'}: "
                         f"{str(e).splitlines()[0]}") from None
    if isinstance(raw, Mapping) and "claims" in raw:
        raw = raw["claims"]
    if not isinstance(raw, list) or not raw:
        raise ClaimError(f"{path}: expected a list of claims (or a mapping with a 'claims' list)")
    claims = [claim_from_mapping(r, f"{path}: claim {i + 1}") for i, r in enumerate(raw)]
    ids = [c.id for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ClaimError(f"{path}: claim ids must be unique; repeated: {dup}")
    return claims


__all__ = ["claim_from_mapping", "load_claims"]
