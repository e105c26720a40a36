"""Model artifacts: canonical JSON bytes, a sha256 content hash and verified loading; no pickle."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from recoup.scoring.errors import ArtifactFormatUnknown, ArtifactHashMismatch
from recoup.scoring.spec import (
    FAMILIES,
    DecileRow,
    DroppedColumn,
    Evaluation,
    GbmFeature,
    GbmSpec,
    ModelSummary,
    PointsScale,
    ReferenceDistribution,
    ScorecardBin,
    ScorecardFeature,
    ScorecardSpec,
    TrainedModel,
)

ARTIFACT_FORMAT = "recoup.model"
ARTIFACT_FORMAT_VERSION = 1
ARTIFACT_MEDIA_TYPE = "application/vnd.recoup.model+json"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ModelArtifact:
    """A stored form of a model: its bytes, their sha256 and the version id built on it."""

    version: str
    sha256: str
    content: bytes


def content_sha256(content: bytes) -> str:
    """Return the hex sha256 of artifact bytes."""
    return hashlib.sha256(content).hexdigest()


def model_version(*, family: str, trained_at: str, sha256: str) -> str:
    """Return the version id: family, training date and the start of the content hash."""
    day = trained_at[:10].replace("-", "")
    return f"{family}-{day}-{sha256[:12]}"


def dump_model(model: TrainedModel) -> ModelArtifact:
    """Serialise a trained model to canonical JSON bytes and name its version."""
    document = {
        "format": ARTIFACT_FORMAT,
        "format_version": ARTIFACT_FORMAT_VERSION,
        "family": model.family,
        **dataclasses.asdict(model),
    }
    content = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
    sha256 = content_sha256(content)
    version = model_version(family=model.family, trained_at=model.summary.trained_at, sha256=sha256)
    return ModelArtifact(version=version, sha256=sha256, content=content)


def _freeze(value: Any) -> Any:
    """Turn JSON lists back into the tuples the dataclasses hold."""
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    if isinstance(value, dict):
        return {key: _freeze(item) for key, item in value.items()}
    return value


def _build(kind: type[T], data: Any, **nested: Any) -> T:
    """Rebuild one dataclass from its JSON object, refusing unknown or missing keys."""
    if not isinstance(data, Mapping):
        raise ArtifactFormatUnknown(
            f"expected an object for {kind.__name__}, found {type(data).__name__}"
        )
    names = {field.name for field in dataclasses.fields(kind)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ArtifactFormatUnknown(
            f"{kind.__name__} has unknown keys: {', '.join(sorted(unknown))}"
        )
    values = {
        name: nested[name] if name in nested else _freeze(item) for name, item in data.items()
    }
    try:
        return kind(**values)
    except (TypeError, ValueError) as error:
        raise ArtifactFormatUnknown(f"{kind.__name__} is malformed: {error}") from error


def _scale(data: Any) -> PointsScale:
    return _build(PointsScale, data)


def _reference(data: Any) -> ReferenceDistribution:
    return _build(ReferenceDistribution, data)


def _scorecard(data: Any) -> ScorecardSpec:
    features = tuple(
        _build(
            ScorecardFeature,
            feature,
            bins=tuple(_build(ScorecardBin, item) for item in feature["bins"]),
        )
        for feature in data["features"]
    )
    return _build(ScorecardSpec, data, features=features, scale=_scale(data["scale"]))


def _gbm(data: Any) -> GbmSpec:
    features = tuple(_build(GbmFeature, feature) for feature in data["features"])
    return _build(GbmSpec, data, features=features, scale=_scale(data["scale"]))


def _model(document: Mapping[str, Any]) -> TrainedModel:
    body = {
        key: value
        for key, value in document.items()
        if key not in {"format", "format_version", "family"}
    }
    summary = _build(
        ModelSummary,
        body["summary"],
        dropped_columns=tuple(
            _build(DroppedColumn, item) for item in body["summary"]["dropped_columns"]
        ),
    )
    evaluation = _build(
        Evaluation,
        body["evaluation"],
        deciles=tuple(_build(DecileRow, row) for row in body["evaluation"]["deciles"]),
    )
    scorecard = _scorecard(body["scorecard"]) if body.get("scorecard") is not None else None
    gbm = _gbm(body["gbm"]) if body.get("gbm") is not None else None
    return _build(
        TrainedModel,
        body,
        summary=summary,
        evaluation=evaluation,
        references=tuple(_reference(item) for item in body["references"]),
        score_reference=_reference(body["score_reference"]),
        scorecard=scorecard,
        gbm=gbm,
    )


def load_model(content: bytes, *, sha256: str, version: str | None = None) -> TrainedModel:
    """Verify artifact bytes against their recorded sha256 and version, then rebuild the model."""
    actual = content_sha256(content)
    if not hmac.compare_digest(actual, sha256.lower()):
        raise ArtifactHashMismatch(
            f"model artifact bytes hash to {actual[:12]}…, not the recorded {sha256[:12]}…; "
            "the artifact was altered or belongs to another version, so it was not loaded"
        )
    try:
        document = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactFormatUnknown(f"model artifact is not a JSON document: {error}") from error
    if not isinstance(document, dict) or document.get("format") != ARTIFACT_FORMAT:
        raise ArtifactFormatUnknown(f"not a {ARTIFACT_FORMAT} artifact")
    if document.get("format_version") != ARTIFACT_FORMAT_VERSION:
        raise ArtifactFormatUnknown(
            f"artifact format version {document.get('format_version')!r} is not supported "
            f"(this Recoup reads version {ARTIFACT_FORMAT_VERSION})"
        )
    if document.get("family") not in FAMILIES:
        raise ArtifactFormatUnknown(f"unknown model family {document.get('family')!r}")
    try:
        model = _model(document)
    except KeyError as error:
        raise ArtifactFormatUnknown(f"model artifact lacks {error}") from error
    if model.family != document["family"]:
        raise ArtifactFormatUnknown("the artifact's family does not match its summary")
    if version is not None:
        expected = model_version(
            family=model.family, trained_at=model.summary.trained_at, sha256=actual
        )
        if version != expected:
            raise ArtifactHashMismatch(
                f"model version {version} does not name these bytes ({expected})"
            )
    return model
