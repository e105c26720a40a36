"""The strategy engine's own experiment arms as uplift training data, and a model trained on them.

An experiment segment puts each account on the champion path or on a random, permanent control
arm (``rules.assign_arms``); the step history (``case_strategy_steps``) says when. That is a
randomised trial of the champion path's first channel, so it is what an uplift model learns
from (``scoring.uplift``), the same code the simulator's experiments train.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from recoup.kit.errors import ValidationFailed
from recoup.models.institution import Institution
from recoup.scoring import repository as scoring_repository
from recoup.scoring.features import end_of_day, state_as_of
from recoup.scoring.uplift import CHANNELS as UPLIFT_CHANNELS
from recoup.scoring.uplift import (
    ExperimentData,
    UpliftDataInvalid,
    UpliftModel,
    fingerprint,
    fit,
    uplift_metrics,
)
from recoup.scoring.uplift import features_of as uplift_features
from recoup.strategy import repository
from recoup.strategy.rules import CHAMPION, compile_strategy


def experiment_data(
    session: Session, *, institution: Institution, as_of: date, days: int = 30
) -> dict[str, ExperimentData]:
    """The strategy engine's real experiment arms as uplift training data, per channel.

    An account counts once per experiment segment it entered on the champion path or the
    control arm (``case_strategy_steps``: its first day there), when that path's first step is a
    channel an uplift model learns and ``days`` have passed since. Its features are its facts on
    that day (days past due and balance from its delinquency history, customer type, age, the
    latest score by then), never later ones; its outcome is a payment in the ``days`` from then.
    """
    entries = repository.experiment_entries(session, institution_id=institution.id)
    documents = repository.version_documents(
        session, version_ids={version for _, version, _, _, _ in entries}
    )
    # (version, segment) → (control arm, the champion path's first channel)
    arms: dict[tuple[int, str], tuple[str, str]] = {}
    for version, document in documents.items():
        compiled = compile_strategy(document)
        for segment in compiled.segments:
            path = segment.paths.get(CHAMPION)
            if segment.experiment is None or path is None or not path.step_indexes:
                continue
            channel = compiled.steps[path.step_indexes[0]].channel
            if channel in UPLIFT_CHANNELS:
                arms[(version, segment.code)] = (segment.experiment.control.code, str(channel))
    last_day = as_of - timedelta(days=days)
    kept = [
        (account, arms[(version, segment)][1], arm != CHAMPION, day)
        for account, version, segment, arm, day in entries
        if (version, segment) in arms
        and arm in {CHAMPION, arms[(version, segment)][0]}
        and day <= last_day
    ]
    if not kept:
        return {}
    frame = pd.DataFrame(kept, columns=["account_id", "channel", "control", "day"])
    # In account order, so the same arms give the same data (and fingerprint) every time.
    frame = frame.sort_values(["account_id", "day"], kind="stable").reset_index(drop=True)
    account_ids = sorted(set(frame["account_id"].tolist()))
    tables = scoring_repository.load_portfolio_tables(
        session, institution_id=institution.id, until=end_of_day(as_of), account_ids=account_ids
    )
    accounts = tables.accounts.set_index("account_id")
    frame = frame[frame["account_id"].isin(accounts.index)].reset_index(drop=True)
    position = pd.Index(tables.accounts["account_id"]).get_indexer(frame["account_id"])
    days_past_due = np.full(len(frame), np.nan)
    balance = np.full(len(frame), np.nan)
    paid = np.zeros(len(frame), dtype=bool)
    payments = tables.payments
    for day in sorted(set(frame["day"].tolist())):
        here = (frame["day"] == day).to_numpy()
        state = state_as_of(tables, end_of_day(day))
        days_past_due[here] = state.days_past_due[position[here]]
        balance[here] = state.balance[position[here]]
        start, end = end_of_day(day - timedelta(days=1)), end_of_day(day + timedelta(days=days))
        window = payments[(payments["paid_at"] >= start) & (payments["paid_at"] < end)]
        paid[here] = frame.loc[here, "account_id"].isin(window["account_id"]).to_numpy()
    scores = pd.DataFrame(
        repository.scores_by_day(session, institution_id=institution.id, account_ids=account_ids),
        columns=["account_id", "day", "probability"],
    )
    propensity = np.full(len(frame), np.nan)
    if len(scores):
        known = pd.merge_asof(
            frame.reset_index().assign(day=pd.to_datetime(frame["day"])).sort_values("day"),
            scores.assign(day=pd.to_datetime(scores["day"])).sort_values("day"),
            on="day",
            by="account_id",
            direction="backward",
        ).sort_values("index")
        propensity = known["probability"].to_numpy(dtype=np.float64)
    born = pd.to_datetime(accounts["birth_date"].reindex(frame["account_id"]), errors="coerce")
    age = (pd.to_datetime(frame["day"]).to_numpy() - born.to_numpy()) / np.timedelta64(1, "D")
    columns = {
        "days_past_due": days_past_due,
        "balance": balance,
        "customer_type": accounts["debtor_kind"]
        .reindex(frame["account_id"])
        .astype(str)
        .to_numpy(),
        "age": np.asarray(age, dtype=np.float64) / 365.25,
        "propensity": propensity,
    }
    features = uplift_features(columns)
    data: dict[str, ExperimentData] = {}
    for channel in sorted(set(frame["channel"].tolist())):
        here = (frame["channel"] == channel).to_numpy()
        data[channel] = ExperimentData(
            features=features[here],
            treated=~frame.loc[here, "control"].to_numpy(dtype=bool),
            paid=paid[here],
        )
    return data


@dataclass(frozen=True, slots=True)
class UpliftTraining:
    """An uplift model trained on experiment data, its held-out figures and its provenance."""

    model: UpliftModel
    metrics: dict[str, Any]
    data_fingerprint: str
    source: str


def train_uplift_on_experiments(
    session: Session,
    *,
    institution: Institution,
    as_of: date,
    days: int = 30,
    learner: str = "x",
    seed: int = 7,
) -> UpliftTraining:
    """Train on the institution's real experiment arms, 70 % of accounts; measure on the rest."""
    data = experiment_data(session, institution=institution, as_of=as_of, days=days)
    if not data:
        raise ValidationFailed(
            f"{institution.code} has no experiment with a control arm whose champion path starts "
            f"on {', '.join(UPLIFT_CHANNELS)} and whose accounts entered {days}+ days ago; run "
            "one (a strategy segment with experiment.control) or use --source simulated"
        )
    rng = np.random.default_rng(seed)
    train: dict[str, ExperimentData] = {}
    held_out: dict[str, ExperimentData] = {}
    for channel, each in data.items():
        test = rng.random(len(each.paid)) < 0.3
        train[channel] = ExperimentData(
            features=each.features[~test], treated=each.treated[~test], paid=each.paid[~test]
        )
        held_out[channel] = ExperimentData(
            features=each.features[test], treated=each.treated[test], paid=each.paid[test]
        )
    try:
        model = fit(train, learner=learner, seed=seed)
        by_channel = {
            channel: uplift_metrics(
                model.predict(each.features, channel), each.treated, each.paid
            ).as_dict()
            for channel, each in held_out.items()
        }
    except UpliftDataInvalid as error:
        raise ValidationFailed(f"{institution.code}'s experiments: {error}") from None
    metrics = {
        "learner": learner,
        "days": days,
        "n_train": sum(len(each.paid) for each in train.values()),
        "n_test": sum(len(each.paid) for each in held_out.values()),
        "seed": seed,
        "channels": by_channel,
    }
    return UpliftTraining(
        model=model,
        metrics=metrics,
        data_fingerprint=fingerprint(data),
        source=f"experiment arms of {institution.code} to {as_of.isoformat()} ({days} days)",
    )
