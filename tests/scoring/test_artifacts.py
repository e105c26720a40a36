"""Model artifacts: pickle-free bytes, content hashes, verified loading."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recoup.scoring.artifacts import dump_model, load_model
from recoup.scoring.errors import ArtifactFormatUnknown, ArtifactHashMismatch
from recoup.scoring.scorer import compile_scorer
from recoup.scoring.spec import TrainedModel
from tests.scoring.conftest import make_credit_frame


@pytest.fixture(params=["scorecard", "gbm"])
def model(
    request: pytest.FixtureRequest, scorecard_model: TrainedModel, gbm_model: TrainedModel
) -> TrainedModel:
    return scorecard_model if request.param == "scorecard" else gbm_model


def _rewritten(content: bytes, change: dict[str, object]) -> bytes:
    document = json.loads(content)
    document.update(change)
    return json.dumps(document).encode()


class TestRoundTrip:
    def test_loaded_model_equals_the_trained_one_and_scores_identically(
        self, model: TrainedModel
    ) -> None:
        artifact = dump_model(model)
        loaded = load_model(artifact.content, sha256=artifact.sha256, version=artifact.version)
        assert loaded == model
        rows = make_credit_frame(500, seed=11)
        np.testing.assert_array_equal(
            compile_scorer(loaded).score(rows).points, compile_scorer(model).score(rows).points
        )

    def test_artifact_is_json_not_pickle(self, model: TrainedModel) -> None:
        artifact = dump_model(model)
        document = json.loads(artifact.content)
        assert document["format"] == "recoup.model"
        assert document["family"] == model.family

    def test_version_carries_family_and_content_hash(self, model: TrainedModel) -> None:
        artifact = dump_model(model)
        assert artifact.version.startswith(f"{model.family}-")
        assert artifact.version.endswith(artifact.sha256[:12])
        assert dump_model(model) == artifact

    def test_gbm_artifact_carries_the_lightgbm_model_text(self, gbm_model: TrainedModel) -> None:
        document = json.loads(dump_model(gbm_model).content)
        assert document["gbm"]["booster"].startswith("tree\n")


class TestTamperDetection:
    def test_a_changed_byte_is_refused(self, model: TrainedModel) -> None:
        artifact = dump_model(model)
        middle = len(artifact.content) // 2
        tampered = (
            artifact.content[:middle]
            + bytes([artifact.content[middle] ^ 1])
            + artifact.content[middle + 1 :]
        )
        with pytest.raises(ArtifactHashMismatch, match=r"altered or belongs to another version"):
            load_model(tampered, sha256=artifact.sha256)

    def test_a_version_naming_other_bytes_is_refused(self, scorecard_model: TrainedModel) -> None:
        artifact = dump_model(scorecard_model)
        with pytest.raises(ArtifactHashMismatch, match=r"does not name these bytes"):
            load_model(
                artifact.content, sha256=artifact.sha256, version="scorecard-20200101-000000000000"
            )

    def test_a_foreign_format_is_refused_even_with_a_matching_hash(
        self, scorecard_model: TrainedModel
    ) -> None:
        from recoup.scoring.artifacts import content_sha256

        content = _rewritten(dump_model(scorecard_model).content, {"format": "someone.else"})
        with pytest.raises(ArtifactFormatUnknown, match=r"not a recoup.model artifact"):
            load_model(content, sha256=content_sha256(content))

    def test_a_newer_format_version_is_refused(self, scorecard_model: TrainedModel) -> None:
        from recoup.scoring.artifacts import content_sha256

        content = _rewritten(dump_model(scorecard_model).content, {"format_version": 2})
        with pytest.raises(ArtifactFormatUnknown, match=r"version 2 is not supported"):
            load_model(content, sha256=content_sha256(content))

    def test_unknown_keys_are_refused(self, scorecard_model: TrainedModel) -> None:
        from recoup.scoring.artifacts import content_sha256

        document = json.loads(dump_model(scorecard_model).content)
        document["summary"]["__reduce__"] = "os.system"
        content = json.dumps(document).encode()
        with pytest.raises(ArtifactFormatUnknown, match=r"unknown keys: __reduce__"):
            load_model(content, sha256=content_sha256(content))

    def test_non_json_bytes_are_refused(self) -> None:
        from recoup.scoring.artifacts import content_sha256

        content = b"\x80\x04\x95pickle"
        with pytest.raises(ArtifactFormatUnknown, match=r"not a JSON document"):
            load_model(content, sha256=content_sha256(content))


def test_scores_survive_a_round_trip_on_frames_with_text_categories(
    scorecard_model: TrainedModel,
) -> None:
    artifact = dump_model(scorecard_model)
    loaded = load_model(artifact.content, sha256=artifact.sha256)
    rows = pd.DataFrame(
        {
            "months_late": [1.0],
            "utilisation": [0.5],
            "income": [np.nan],
            "region": ["east"],
            "noise": [0.1],
        }
    )
    assert (
        compile_scorer(loaded).score(rows).points[0]
        == compile_scorer(scorecard_model).score(rows).points[0]
    )
