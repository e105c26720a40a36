"""Typed errors of the scoring domain, each with a message a person can act on."""

from __future__ import annotations

from recoup.kit.errors import RecoupError


class ScoringError(RecoupError):
    """A scoring, training or model-artifact failure."""


class TrainingDataInvalid(ScoringError):
    """The data given for training or scoring cannot be used as it is."""

    status_code = 422
    title = "Training data invalid"


class TargetColumnMissing(TrainingDataInvalid):
    """The named target column is not in the data."""


class TargetNotBinary(TrainingDataInvalid):
    """The target column does not hold exactly two distinct values."""


class PositiveLabelUnknown(TrainingDataInvalid):
    """The label named as the positive event does not occur in the target column."""


class TooFewRows(TrainingDataInvalid):
    """There are too few rows, or too few of one class, to train and evaluate."""


class NoUsableFeatures(TrainingDataInvalid):
    """No column is left to learn from once the target, id and unusable columns are set aside."""


class FeatureColumnsMissing(TrainingDataInvalid):
    """Data to be scored lacks columns the model needs."""


class ArtifactRejected(ScoringError):
    """A model artifact failed verification and was not loaded."""

    status_code = 422
    title = "Model artifact rejected"


class ArtifactHashMismatch(ArtifactRejected):
    """The artifact's bytes do not match the sha256 recorded for it."""


class ArtifactFormatUnknown(ArtifactRejected):
    """The artifact is not a Recoup model document this version can read."""
