"""The debtor behaviour model, pure: what debtors are like and how they answer contact.

Everything here works on numpy columns (one row per case) and takes its numbers from the
parameter mapping of ``simulation.params``. Latent traits (ability and willingness to pay,
whether the phone on file works, whether pushing backfires) are drawn once per case and are
never shown to a strategy: strategies see the portfolio's facts, the contact log's outcomes,
promises, plans and the score ``observed_propensity`` computes from those facts alone.

The uplift structure follows from the traits: *sure things* (able and willing) pay unprompted;
*persuadables* (able, unwilling) pay when someone talks to them; *lost causes* (unable) pay
little either way; *do-not-disturbs* (``dnd``) pay less and complain more once contacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from recoup.simulation.params import Params

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

# Channels as small integers so outcomes are drawn on columns.
CHANNELS = ("sms", "email", "call", "ai_call", "visit", "letter")
CHANNEL_CODE = {name: code for code, name in enumerate(CHANNELS)}
SMS, EMAIL, CALL, AI_CALL, VISIT, LETTER = range(len(CHANNELS))
VOICE = frozenset({CALL, AI_CALL})
WORKED = frozenset({CALL, VISIT})
MEDIAN_BALANCE = 500_000.0  # ¥5,000 in minor units: where the balance effect is zero


def sigmoid(x: Floats) -> Floats:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


def logit(p: Floats) -> Floats:
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(clipped / (1 - clipped)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Latent:
    """What the simulator knows about each debtor and the product never sees."""

    ability: Floats
    willingness_logit: Floats
    dnd: Bools
    phone_valid: Bools
    email_valid: Bools
    address_valid: Bools


def _dpd_term(days_past_due: Floats) -> Floats:
    return np.asarray(np.log1p(np.maximum(days_past_due, 0.0) / 30.0), dtype=np.float64)


def _balance_term(balance: Floats) -> Floats:
    return np.asarray(np.log(np.maximum(balance, 100.0) / MEDIAN_BALANCE), dtype=np.float64)


def draw_latent(
    rng: np.random.Generator,
    params: Params,
    *,
    days_past_due: Floats,
    balance: Floats,
    business: Bools,
    age: Floats,
) -> Latent:
    """Draw each case's hidden traits, correlated with what the portfolio shows."""
    size = len(days_past_due)
    rho = float(params["latent_correlation"])
    first = rng.standard_normal(size)
    second = rho * first + np.sqrt(max(1.0 - rho * rho, 0.0)) * rng.standard_normal(size)
    known_age = np.nan_to_num(age, nan=40.0)
    young = known_age < 30
    older = known_age >= 45
    ability_logit = (
        params["ability_mean"]
        - params["ability_dpd"] * _dpd_term(days_past_due)
        - params["ability_balance"] * _balance_term(balance)
        + params["ability_business"] * business
        + params["ability_young"] * young
        + params["ability_sd"] * first
    )
    willingness_logit = (
        params["willingness_mean"]
        - params["willingness_dpd"] * _dpd_term(days_past_due)
        + params["willingness_older"] * older
        + params["willingness_sd"] * second
    )
    return Latent(
        ability=sigmoid(np.asarray(ability_logit, dtype=np.float64)),
        willingness_logit=np.asarray(willingness_logit, dtype=np.float64),
        dnd=rng.random(size) < params["dnd_share"],
        phone_valid=rng.random(size) < params["phone_valid"],
        email_valid=rng.random(size) < params["email_valid"],
        address_valid=rng.random(size) < params["address_valid"],
    )


def observed_propensity(
    *,
    days_past_due: Floats,
    balance: Floats,
    business: Bools,
    age: Floats,
    paid_before: Bools,
    broken_promises: Floats,
    failed_attempts: Floats,
) -> Floats:
    """The collection score the product would have: a fixed scorecard over visible facts only.

    It stands in for the institution's champion model (which the daily cycle refreshes): its
    weights are what a logistic model fitted on this portfolio's history learns, and it never
    reads a latent trait, so it ranks well but not perfectly (AUC ≈ 0.7–0.75).
    """
    known_age = np.nan_to_num(age, nan=40.0)
    score = (
        -0.9
        - 1.1 * _dpd_term(days_past_due)
        - 0.3 * _balance_term(balance)
        + 0.25 * business
        - 0.2 * (known_age < 30)
        + 0.25 * (known_age >= 45)
        + 0.6 * paid_before
        - 0.5 * np.minimum(broken_promises, 3)
        - 0.08 * np.minimum(failed_attempts, 6)
    )
    return sigmoid(np.asarray(score, dtype=np.float64))


def unprompted_chance(
    params: Params,
    *,
    ability: Floats,
    willingness_logit: Floats,
    days_past_due: Floats,
    reminded: Bools,
    pushed_dnd: Bools,
) -> Floats:
    """Each case's chance of paying today without a conversation (self-cure and reminders)."""
    willingness = sigmoid(willingness_logit)
    decay = np.exp(-np.maximum(days_past_due, 0.0) / params["cure_decay_days"])
    chance = params["self_cure_hazard"] * ability * willingness**2 * decay
    chance = chance * (1.0 + params["reminder_lift"] * reminded)
    chance = np.where(pushed_dnd, chance * params["dnd_penalty"], chance)
    return np.asarray(np.clip(chance, 0.0, 1.0), dtype=np.float64)


def reach_chance(
    params: Params,
    *,
    channel: npt.NDArray[np.int64],
    age: Floats,
    business: Bools,
    phone_valid: Bools,
    email_valid: Bools,
    address_valid: Bools,
    hour: Floats,
) -> Floats:
    """The chance each contact reaches the debtor: a right-party call or visit, a message read."""
    known_age = np.nan_to_num(age, nan=40.0)
    young = known_age < 30
    older = known_age >= 45
    answer = np.where(
        business,
        params["answer_call_business"],
        np.where(
            young,
            params["answer_call_young"],
            np.where(older, params["answer_call_older"], params["answer_call_middle"]),
        ),
    )
    hour_factor = np.where(
        hour >= 18, params["evening_factor"], np.where(hour < 12, params["morning_factor"], 1.0)
    )
    sms = np.where(young & ~business, params["read_sms_young"], params["read_sms_older"])
    email = np.where(young, params["read_email_young"], params["read_email_older"])
    email = np.where(business, np.minimum(2 * params["read_email_older"], 1.0), email)
    chance = np.select(
        [
            channel == SMS,
            channel == EMAIL,
            channel == CALL,
            channel == AI_CALL,
            channel == VISIT,
            channel == LETTER,
        ],
        [
            sms * phone_valid,
            email * email_valid,
            answer * hour_factor * phone_valid,
            answer * params["ai_answer_factor"] * hour_factor * phone_valid,
            params["visit_meet"] * address_valid,
            params["read_letter"] * address_valid,
        ],
        default=0.0,
    )
    return np.asarray(np.clip(chance, 0.0, 1.0), dtype=np.float64)


def persuasion(params: Params, channel: npt.NDArray[np.int64]) -> Floats:
    """How strongly a reached contact on each channel talks a debtor into promising (call = 1)."""
    table = np.zeros(len(CHANNELS))
    table[CALL] = 1.0
    table[AI_CALL] = params["persuasion_ai"]
    table[VISIT] = params["persuasion_visit"]
    table[LETTER] = params["persuasion_letter"]
    return np.asarray(table[channel], dtype=np.float64)


def promise_chance(
    params: Params, *, strength: Floats, ability: Floats, willingness_logit: Floats
) -> Floats:
    """The chance a reached debtor promises to pay: persuadables (able, unwilling) the most."""
    willingness = sigmoid(willingness_logit)
    chance = params["promise_rate"] * strength * ability * (0.4 + 0.6 * (1.0 - willingness))
    return np.asarray(np.clip(chance, 0.0, 1.0), dtype=np.float64)


def keep_chance(params: Params, ability: Floats) -> Floats:
    """The chance a promise is kept on its due date."""
    return np.asarray(
        np.clip(params["promise_keep"] * (0.4 + 0.6 * ability), 0.0, 1.0), dtype=np.float64
    )


def complaint_chance(params: Params, *, contacts_7d: Floats, dnd: Bools) -> Floats:
    """The chance a contact that reached the debtor draws a complaint; over-contact raises it."""
    over = np.maximum(contacts_7d - params["over_contact_threshold"], 0.0)
    chance = params["complaint_base"] * (1.0 + params["over_contact_slope"] * over)
    chance = np.where(dnd, chance * params["dnd_complaint"], chance)
    return np.asarray(np.clip(chance, 0.0, 1.0), dtype=np.float64)


def annoyance(params: Params, contacts_7d: Floats) -> Floats:
    """Willingness (logit) lost by a contact made above the over-contact threshold."""
    over = contacts_7d > params["over_contact_threshold"]
    return np.asarray(params["annoyance_willingness"] * over, dtype=np.float64)


def hardship_chance(params: Params, ability: Floats) -> Floats:
    return np.asarray(
        np.clip(params["hardship_rate"] * (1.0 - ability), 0.0, 1.0), dtype=np.float64
    )


def synthetic_portfolio(size: int, seed: int) -> dict[str, Any]:
    """A portfolio of delinquent cases as columns (for tests and the large-scale timing)."""
    rng = np.random.default_rng(seed)
    days = rng.choice([5, 15, 25, 45, 75, 120], size=size, p=[0.3, 0.25, 0.15, 0.15, 0.1, 0.05])
    days = np.maximum(days + rng.integers(-4, 5, size=size), 1).astype(np.float64)
    balance = np.round(np.exp(rng.normal(np.log(600_000), 1.0, size=size)))
    business = rng.random(size) < 0.08
    age = np.where(business, np.nan, rng.integers(19, 70, size=size).astype(np.float64))
    products = np.array(["credit_card", "consumer_loan", "cash_loan"], dtype=object)
    return {
        "case_id": np.arange(1, size + 1, dtype=np.int64),
        "account_id": np.arange(1, size + 1, dtype=np.int64) * 10,
        "debtor_id": np.arange(1, size + 1, dtype=np.int64),
        "days_past_due": days,
        "balance": balance.astype(np.float64),
        "customer_type": np.where(business, "business", "individual").astype(object),
        "age": age,
        "product": products[rng.integers(0, 3, size=size)],
        "region": np.full(size, "广东省", dtype=object),
    }
