"""Uplift: the extra chance of payment a contact buys, learnt from a randomised control arm.

A collection score ranks debtors by how likely they are to pay; uplift ranks them by how much
more likely they are to pay *because they were contacted* (DOMAIN §3: value = balance ×
(P(pay | treat) − P(pay | no treat))). It can only be learnt where contact was randomised: an
experiment's permanent control arm (``strategy.rules.assign_arms``), real or simulated.

Learners, per channel, on LightGBM (causalml's names):

- *T-learner*: one classifier P(pay | contacted) on the treated, one P(pay | not contacted) on
  the control arm; the uplift is the difference.
- *X-learner* (Künzel et al. 2019): the T-learner's two models impute each case's own effect
  (a treated payer's outcome minus what the control model expected, a control case's treated
  prediction minus its outcome); two regressors learn those imputed effects, and the uplift is
  their mix weighted by the share treated. It needs less data where the effect is small beside
  the base rate, as in collections (most of P(pay) is there with or without a call).

Quality on held-out cases, as scikit-uplift defines it (``qini_auc_score``,
``uplift_auc_score``): cases ranked by predicted uplift, cut after each distinct score;

- the *Qini curve* at a cut is the treated payers above it minus the control payers above it
  scaled to the treated count (incremental payers);
- the *uplift curve* is the payment rate of the treated above the cut minus that of the control
  above it, times the cases above it;
- each curve's area is compared with the straight line of a random ranking and with a *perfect*
  ranking of the same outcomes (for the Qini curve treated payers first and control payers
  last; for the uplift curve scikit-uplift's ``perfect_uplift_curve``); the *coefficient*
  is (model − random) / (perfect − random): 0 is random, 1 perfect. Perfect is out of reach by
  construction (it knows each case's coin toss), so compare a model with the random ranking's
  spread, not with 1.

Areas are the curve's mean height divided by the cases (incremental payers per case), so
samples of different sizes compare; the random ranking's is half the overall effect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

FEATURES = ("days_past_due", "log_balance", "business", "age", "propensity")
CHANNELS = ("call", "sms", "ai_call")
LEARNERS = ("t", "x")
FORMAT = "recoup-uplift"
FORMAT_VERSION = 1


class UpliftDataInvalid(ValueError):
    """Experiment data an uplift model cannot be trained or measured on."""


def features_of(columns: Mapping[str, Any]) -> Floats:
    """The model's inputs from facts a strategy sees at decision time (never a latent trait)."""
    business = np.asarray(np.asarray(columns["customer_type"], dtype=object) == "business")
    return np.column_stack(
        [
            np.asarray(columns["days_past_due"], dtype=np.float64),
            np.log1p(np.maximum(np.asarray(columns["balance"], dtype=np.float64), 0.0)),
            business.astype(np.float64),
            np.asarray(columns["age"], dtype=np.float64),
            np.asarray(columns["propensity"], dtype=np.float64),
        ]
    )


# -- measuring a ranking ---------------------------------------------------------------------


def _check(predicted: Floats, treated: Bools, paid: Bools) -> None:
    if not len(predicted) == len(treated) == len(paid):
        raise UpliftDataInvalid(
            f"predicted ({len(predicted)}), treated ({len(treated)}) and paid ({len(paid)}) "
            "must have one value per case"
        )
    if not np.any(treated) or np.all(treated):
        raise UpliftDataInvalid(
            "uplift needs both arms: some cases contacted and some in the control arm"
        )


def _cumulative(
    predicted: Floats, treated: Bools, paid: Bools
) -> tuple[Floats, Floats, Floats, Floats, Floats]:
    """Cases, treated, control, treated payers and control payers above each distinct cut."""
    order = np.argsort(-np.asarray(predicted, dtype=np.float64), kind="mergesort")
    score = np.asarray(predicted, dtype=np.float64)[order]
    t = np.asarray(treated, dtype=bool)[order].astype(np.float64)
    y = np.asarray(paid, dtype=bool)[order].astype(np.float64)
    # Tied scores are one cut: a model cannot order cases it scores alike.
    cuts = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    n_t = np.cumsum(t)[cuts]
    y_t = np.cumsum(y * t)[cuts]
    y_c = np.cumsum(y * (1 - t))[cuts]
    n = (cuts + 1).astype(np.float64)
    return (
        np.r_[0.0, n],
        np.r_[0.0, n_t],
        np.r_[0.0, n - n_t],
        np.r_[0.0, y_t],
        np.r_[0.0, y_c],
    )


def qini_curve(predicted: Floats, treated: Bools, paid: Bools) -> tuple[Floats, Floats]:
    """Cases above each cut and the incremental payers among them (Radcliffe's Qini curve)."""
    n, n_t, n_c, y_t, y_c = _cumulative(predicted, treated, paid)
    ratio = np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c > 0)
    return n, y_t - y_c * ratio


def uplift_curve(predicted: Floats, treated: Bools, paid: Bools) -> tuple[Floats, Floats]:
    """Cases above each cut and (treated payment rate − control payment rate) × those cases."""
    n, n_t, n_c, y_t, y_c = _cumulative(predicted, treated, paid)
    rate_t = np.divide(y_t, n_t, out=np.zeros_like(y_t), where=n_t > 0)
    rate_c = np.divide(y_c, n_c, out=np.zeros_like(y_c), where=n_c > 0)
    return n, (rate_t - rate_c) * n


def _area(x: Floats, y: Floats) -> float:
    """Trapezoid area under a curve, over cases² (the curve's mean height per case)."""
    if x[-1] <= 0:
        return 0.0
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0) / (x[-1] * x[-1]))


def perfect_qini_ranking(treated: Bools, paid: Bools) -> Floats:
    """The Qini curve's perfect ranking: treated payers first, control payers last."""
    t = np.asarray(treated, dtype=bool)
    y = np.asarray(paid, dtype=bool)
    return np.asarray((y & t).astype(np.float64) - (y & ~t).astype(np.float64), dtype=np.float64)


def perfect_uplift_ranking(treated: Bools, paid: Bools) -> Floats:
    """The uplift curve's perfect ranking (scikit-uplift's ``perfect_uplift_curve``).

    Treated payers, then control non-payers, then treated non-payers or control payers
    first, whichever keeps the two arms' payment rates further apart.
    """
    t = np.asarray(treated, dtype=bool)
    y = np.asarray(paid, dtype=bool)
    control_payers = int(np.sum(y & ~t))
    treated_non_payers = int(np.sum(~y & t))
    summand = y if control_payers > treated_non_payers else t
    return np.asarray(2.0 * (y == t) + summand, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class CurveScore:
    """One curve's area for a model, a random ranking and the perfect ranking (per case²)."""

    model: float
    random: float
    perfect: float

    @property
    def coefficient(self) -> float:
        """(model − random) / (perfect − random): 0 is no better than random, 1 is perfect."""
        span = self.perfect - self.random
        return (self.model - self.random) / span if span else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "coefficient": round(self.coefficient, 6),
            "model": round(self.model, 6),
            "random": round(self.random, 6),
            "perfect": round(self.perfect, 6),
        }


def _score(curve: Any, perfect: Any, predicted: Floats, treated: Bools, paid: Bools) -> CurveScore:
    x, y = curve(predicted, treated, paid)
    px, py = curve(perfect(treated, paid), treated, paid)
    # The random ranking's expected curve is the straight line to the same end point.
    return CurveScore(model=_area(x, y), random=float(y[-1] / x[-1]) / 2.0, perfect=_area(px, py))


@dataclass(frozen=True, slots=True)
class UpliftMetrics:
    """How well a ranking finds the debtors a contact moves, on one held-out experiment."""

    qini: CurveScore
    auuc: CurveScore
    cases: int
    treated: int
    paid_treated: float
    paid_control: float

    @property
    def average_uplift(self) -> float:
        """Payment rate of the treated minus that of the control arm (the average effect)."""
        return self.paid_treated - self.paid_control

    def as_dict(self) -> dict[str, Any]:
        return {
            "qini": self.qini.as_dict(),
            "auuc": self.auuc.as_dict(),
            "cases": self.cases,
            "treated": self.treated,
            "control": self.cases - self.treated,
            "paid_treated": round(self.paid_treated, 6),
            "paid_control": round(self.paid_control, 6),
            "average_uplift": round(self.average_uplift, 6),
        }


def uplift_metrics(predicted: Floats, treated: Bools, paid: Bools) -> UpliftMetrics:
    """Qini and AUUC of a ranking by predicted uplift, with random and perfect for scale."""
    predicted = np.asarray(predicted, dtype=np.float64)
    treated = np.asarray(treated, dtype=bool)
    paid = np.asarray(paid, dtype=bool)
    _check(predicted, treated, paid)
    return UpliftMetrics(
        qini=_score(qini_curve, perfect_qini_ranking, predicted, treated, paid),
        auuc=_score(uplift_curve, perfect_uplift_ranking, predicted, treated, paid),
        cases=len(predicted),
        treated=int(treated.sum()),
        paid_treated=float(paid[treated].mean()),
        paid_control=float(paid[~treated].mean()),
    )


def random_spread(
    treated: Bools, paid: Bools, *, draws: int = 50, seed: int = 0
) -> tuple[float, float]:
    """Mean and standard deviation of the Qini coefficient of random rankings (the noise floor)."""
    rng = np.random.default_rng(seed)
    values = [
        uplift_metrics(rng.random(len(paid)), treated, paid).qini.coefficient for _ in range(draws)
    ]
    return float(np.mean(values)), float(np.std(values, ddof=1))


# -- learners --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExperimentData:
    """One randomised experiment on one channel: each case's features, arm and outcome."""

    features: Floats
    treated: Bools
    paid: Bools

    def check(self, channel: str) -> None:
        if self.features.ndim != 2 or self.features.shape[1] != len(FEATURES):
            raise UpliftDataInvalid(
                f"{channel}: features need {len(FEATURES)} columns ({', '.join(FEATURES)})"
            )
        for arm, rows in (("contacted", self.treated), ("control", ~self.treated)):
            payers = int(self.paid[rows].sum())
            if rows.sum() < MIN_ARM or payers < MIN_PAYERS:
                raise UpliftDataInvalid(
                    f"{channel}: the {arm} arm has {int(rows.sum())} cases and {payers} payers; "
                    f"an uplift model needs at least {MIN_ARM} cases and {MIN_PAYERS} payers in "
                    "each arm (run the experiment longer or on more cases)"
                )


MIN_ARM = 200
MIN_PAYERS = 20


# Shallow, well-regularised trees: the effect is a small difference of two probabilities, and
# deep trees fit the noise of each arm instead.
_BOOSTING: dict[str, Any] = {
    "n_estimators": 150,
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_child_samples": 200,
    "subsample": 0.8,
    "subsample_freq": 1,
    "n_jobs": 1,
    "verbose": -1,
}


def _classifier(seed: int) -> Any:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(random_state=seed, **_BOOSTING)


def _regressor(seed: int) -> Any:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(random_state=seed, **_BOOSTING)


def _booster_text(model: Any) -> str:
    return str(model.booster_.model_to_string())


def _booster(text: str) -> Any:
    from lightgbm import Booster

    return Booster(model_str=text)


@dataclass(frozen=True, slots=True)
class ChannelModel:
    """One channel's learnt uplift: LightGBM boosters as text, combined by the learner's rule."""

    learner: str
    # t: (treated classifier, control classifier); x: (effect on treated, effect on control).
    boosters: tuple[str, str]
    treated_share: float

    def predict(self, features: Floats) -> Floats:
        first, second = (_booster(text) for text in self.boosters)
        a = np.asarray(first.predict(features), dtype=np.float64)
        b = np.asarray(second.predict(features), dtype=np.float64)
        if self.learner == "t":
            return np.asarray(a - b, dtype=np.float64)
        # X-learner: weight the effect learnt on the control arm by the share treated.
        share = self.treated_share
        return np.asarray(share * b + (1.0 - share) * a, dtype=np.float64)


def fit_channel(data: ExperimentData, *, learner: str = "x", seed: int = 0) -> ChannelModel:
    """Learn one channel's uplift from a randomised experiment."""
    if learner not in LEARNERS:
        raise UpliftDataInvalid(f"learner must be one of {', '.join(LEARNERS)} (got '{learner}')")
    x, t, y = data.features, data.treated, data.paid.astype(np.float64)
    on_treated = _classifier(seed).fit(x[t], y[t])
    on_control = _classifier(seed).fit(x[~t], y[~t])
    share = float(t.mean())
    if learner == "t":
        return ChannelModel("t", (_booster_text(on_treated), _booster_text(on_control)), share)
    # Each case's imputed effect: its outcome against the other arm's model.
    effect_treated = y[t] - on_control.predict_proba(x[t])[:, 1]
    effect_control = on_treated.predict_proba(x[~t])[:, 1] - y[~t]
    tau_treated = _regressor(seed).fit(x[t], effect_treated)
    tau_control = _regressor(seed).fit(x[~t], effect_control)
    return ChannelModel("x", (_booster_text(tau_treated), _booster_text(tau_control)), share)


class UpliftModel:
    """Per channel, the estimated extra probability of payment a contact buys."""

    def __init__(self, channels: Mapping[str, ChannelModel]) -> None:
        self.channels = dict(channels)

    def predict(self, features: Floats, channel: str) -> Floats:
        """Each case's uplift on ``channel`` (zero for a channel the model has not learnt)."""
        model = self.channels.get(channel)
        if model is None or len(features) == 0:
            return np.zeros(len(features))
        return model.predict(features)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return FEATURES

    def knows(self, channel: str) -> bool:
        return channel in self.channels

    def score(self, columns: Mapping[str, Any], channel: str) -> Floats:
        """Uplift of each case from facts columns; NaN on a channel the model has not learnt."""
        if not self.knows(channel):
            return np.full(len(columns["balance"]), np.nan)
        return self.predict(features_of(columns), channel)

    def to_bytes(self) -> bytes:
        """The artifact stored in the model registry (JSON; boosters as LightGBM text)."""
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "features": list(FEATURES),
            "channels": {
                name: {
                    "learner": model.learner,
                    "boosters": list(model.boosters),
                    "treated_share": model.treated_share,
                }
                for name, model in sorted(self.channels.items())
            },
        }
        return json.dumps(document, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, artifact: bytes) -> UpliftModel:
        try:
            document = json.loads(artifact.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UpliftDataInvalid(f"not an uplift model artifact: {error}") from None
        if document.get("format") != FORMAT or document.get("features") != list(FEATURES):
            raise UpliftDataInvalid(
                f"not a {FORMAT} artifact of version {FORMAT_VERSION} with features "
                f"{', '.join(FEATURES)}"
            )
        return cls(
            {
                name: ChannelModel(
                    learner=str(each["learner"]),
                    boosters=(str(each["boosters"][0]), str(each["boosters"][1])),
                    treated_share=float(each["treated_share"]),
                )
                for name, each in document["channels"].items()
            }
        )


def fit(data: Mapping[str, ExperimentData], *, learner: str = "x", seed: int = 0) -> UpliftModel:
    """Learn the uplift of each channel that has experiment data."""
    for channel, each in data.items():
        each.check(channel)
    return UpliftModel(
        {channel: fit_channel(each, learner=learner, seed=seed) for channel, each in data.items()}
    )


def fingerprint(data: Mapping[str, ExperimentData]) -> str:
    """A short hash of the experiment data a model was trained on (for the registry)."""
    import hashlib

    digest = hashlib.sha256()
    for channel in sorted(data):
        each = data[channel]
        digest.update(channel.encode())
        for array in (each.features, each.treated, each.paid):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
