"""A deterministic synthetic Chinese lending portfolio, generated column by column with numpy.

Nothing here touches a database: ``generate_portfolio`` returns one ``Table`` of column
arrays per database table, with ``debtor_index`` / ``account_index`` columns pointing at
rows of the parent table (the seeding service turns them into ids). The same seed,
flavour and ``as_of`` always give the same portfolio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from recoup.contact.rules import IMPORT_FLAGS, ConsentKind
from recoup.demo import reference

Column = npt.NDArray[Any]

BUCKETS = ("M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+")
HISTORY_MONTHS = 12
# Month-end snapshots are taken every 30 days back from ``as_of`` so a roll is exactly +30 DPD.
SNAPSHOT_DAYS = 30
CHINA_UTC_OFFSET_HOURS = 8
DEMO_AGENTS = 3
AGENT_QUEUE = 200  # accounts per demo agent: a realistic day's book for one collector


@dataclass(frozen=True, slots=True)
class ProductTerms:
    """How one product's balances are drawn and priced."""

    median_principal_yuan: float
    sigma: float
    annual_rate: float
    term_months: int
    penalty_daily_rate: float
    late_fee_share: float  # of one installment, per month late (capped at six)


PRODUCT_TERMS: dict[str, ProductTerms] = {
    "cash_loan": ProductTerms(6_000, 0.8, 0.24, 12, 0.0003, 0.05),
    "consumer_loan": ProductTerms(12_000, 0.7, 0.18, 24, 0.0003, 0.05),
    "credit_card": ProductTerms(18_000, 0.9, 0.1825, 1, 0.0005, 0.05),
    "auto_loan": ProductTerms(60_000, 0.5, 0.08, 36, 0.0002, 0.03),
    "mortgage": ProductTerms(450_000, 0.5, 0.042, 240, 0.0001, 0.0),
    "sme_loan": ProductTerms(350_000, 0.9, 0.06, 36, 0.00025, 0.02),
}

# Monthly transitions by bucket: (cure to M0, roll back one bucket, stay, roll forward).
TRANSITIONS: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 0.0, 0.93, 0.07),
    (0.55, 0.0, 0.12, 0.33),
    (0.15, 0.10, 0.15, 0.60),
    (0.07, 0.06, 0.12, 0.75),
    (0.04, 0.04, 0.10, 0.82),
    (0.03, 0.03, 0.08, 0.86),
    (0.02, 0.02, 0.06, 0.90),
    (0.005, 0.0, 0.095, 0.90),
)
# Where a simulated account stands twelve months before ``as_of``.
START_SHARES = (0.80, 0.07, 0.04, 0.03, 0.02, 0.015, 0.01, 0.015)


@dataclass(frozen=True, slots=True)
class Flavour:
    """What kind of lender the portfolio belongs to."""

    name: str
    stream: int  # keeps each flavour's random stream apart for one seed
    currency: str
    products: tuple[tuple[str, float], ...]  # mix for individual debtors
    business_share: float  # share of debtors that are businesses (holding SME loans)
    balance_scale: float
    bucket_shares: tuple[float, ...]  # target spread of today's accounts over BUCKETS
    channels: tuple[tuple[str, float], ...]
    accounts_per_debtor: tuple[float, ...]  # P(1 account), P(2), P(3)
    charge_off_share: float  # of accounts past 180 days
    age_floor: int
    age_shape: float
    age_scale: float


CONSUMER_FINANCE = Flavour(
    name="consumer_finance",
    stream=1,
    currency="CNY",
    products=(
        ("cash_loan", 0.45),
        ("consumer_loan", 0.37),
        ("credit_card", 0.06),
        ("auto_loan", 0.12),
    ),
    business_share=0.0,
    balance_scale=1.0,
    bucket_shares=(0.08, 0.42, 0.16, 0.10, 0.07, 0.05, 0.04, 0.08),
    channels=(
        ("alipay", 0.35),
        ("wechat_pay", 0.25),
        ("direct_debit", 0.22),
        ("bank_transfer", 0.15),
        ("card", 0.03),
    ),
    accounts_per_debtor=(0.85, 0.12, 0.03),
    charge_off_share=0.5,
    age_floor=20,
    age_shape=2.5,
    age_scale=5.0,
)

COMMERCIAL_BANK = Flavour(
    name="commercial_bank",
    stream=2,
    currency="CNY",
    products=(
        ("credit_card", 0.60),
        ("consumer_loan", 0.18),
        ("auto_loan", 0.12),
        ("mortgage", 0.10),
    ),
    business_share=0.2,
    balance_scale=1.6,
    bucket_shares=(0.10, 0.45, 0.15, 0.09, 0.06, 0.04, 0.03, 0.08),
    channels=(
        ("direct_debit", 0.40),
        ("bank_transfer", 0.30),
        ("card", 0.10),
        ("alipay", 0.08),
        ("wechat_pay", 0.07),
        ("cash", 0.05),
    ),
    accounts_per_debtor=(0.80, 0.15, 0.05),
    charge_off_share=0.6,
    age_floor=23,
    age_shape=3.0,
    age_scale=6.0,
)


@dataclass(frozen=True)
class Table:
    """Equal-length column arrays named after the database columns."""

    columns: dict[str, Column] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> Column:
        return self.columns[name]


@dataclass(frozen=True)
class Portfolio:
    """One institution's synthetic debtors, contacts, accounts, payments and history."""

    flavour: Flavour
    as_of: date
    debtors: Table
    contact_points: Table
    accounts: Table
    payments: Table
    delinquency_events: Table
    promises: Table = field(default_factory=Table)
    contact_point_consents: Table = field(default_factory=Table)
    # The simulated recent past (``demo.history``): the contact log and payment plans.
    contact_attempts: Table = field(default_factory=Table)
    payment_plans: Table = field(default_factory=Table)
    plan_instalments: Table = field(default_factory=Table)
    # The complaints debtors made after a simulated contact: when, on which channel, to whom.
    complaints: Table = field(default_factory=Table)

    @property
    def row_count(self) -> int:
        return sum(
            len(table)
            for table in (
                self.debtors,
                self.contact_points,
                self.contact_point_consents,
                self.accounts,
                self.payments,
                self.delinquency_events,
                self.promises,
                self.contact_attempts,
                self.payment_plans,
                self.plan_instalments,
            )
        )


def generate_portfolio(
    *, accounts: int, seed: int, flavour: Flavour, as_of: date, current_spells: bool = False
) -> Portfolio:
    """Generate ``accounts`` accounts (and their debtors) for one lender, deterministically.

    With ``current_spells`` every account late today was late without a break since it fell
    due (the month-end snapshots count its days past due back to the day it fell delinquent,
    current just before): the history the simulator continues (``demo.history``).
    """
    if accounts < 1:
        raise ValueError("a portfolio needs at least one account")
    rng = np.random.default_rng(np.random.SeedSequence([seed, flavour.stream]))
    today = np.datetime64(as_of, "D")

    debtor_of_account, debtor_count = _accounts_per_debtor(rng, accounts, flavour)
    is_business = rng.random(debtor_count) < flavour.business_share
    debtors, region = _debtors(rng, flavour, debtor_count, is_business, today)
    path = _delinquency_paths(rng, accounts, flavour)
    if current_spells:
        path = _with_current_spells(path)
    account_table, installment, monthly_rate = _accounts(
        rng, flavour, debtor_of_account, is_business, path, debtors, today
    )
    contact_points, consents = _consents(
        _contact_points(rng, debtors, is_business, region, account_table, debtor_of_account, today)
    )
    payments = _payments(rng, flavour, path, account_table, installment, monthly_rate, today)
    events = _delinquency_events(path, account_table, today)
    # A stream of its own, so the promise history leaves every other table as it was.
    promise_rng = np.random.default_rng(np.random.SeedSequence([seed, flavour.stream, 7]))
    promises = _promises(promise_rng, flavour, path, account_table, payments, today)
    return Portfolio(
        flavour=flavour,
        as_of=as_of,
        debtors=debtors,
        contact_points=contact_points,
        accounts=account_table,
        payments=payments,
        delinquency_events=events,
        promises=promises,
        contact_point_consents=consents,
    )


# --- small vectorised helpers -------------------------------------------------------------


def bucket_index(days_past_due: Column) -> Column:
    """Return each DPD's bucket position (M0 = 0 … M6+ = 7), like ``portfolio.rules.bucket_for``."""
    days = np.asarray(days_past_due, dtype=np.int64)
    return np.where(days <= 0, 0, np.minimum((days - 1) // 30 + 1, 7))


def bucket_names(days_past_due: Column) -> Column:
    """Return each DPD's bucket name."""
    return np.array(BUCKETS)[bucket_index(days_past_due)]


def weighted_choice(
    rng: np.random.Generator, weights: Column | Sequence[float], size: int
) -> Column:
    """Draw ``size`` indices with the given (unnormalised) weights."""
    probabilities = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(probabilities), size=size, p=probabilities / probabilities.sum())


def _digits_to_strings(codes: Column) -> Column:
    """Turn an (n, k) array of ASCII codes into n Unicode strings of length k."""
    matrix = np.ascontiguousarray(codes, dtype=np.uint8)
    width = matrix.shape[1]
    return matrix.view(f"S{width}").ravel().astype(f"U{width}")


def _random_digits(rng: np.random.Generator, rows: int, width: int) -> Column:
    return rng.integers(0, 10, size=(rows, width), dtype=np.uint8) + ord("0")


def concat(*parts: Column | str) -> Column:
    """Join string columns element-wise, in the narrowest string dtype that holds the result."""
    result: Column = np.asarray(parts[0])
    for part in parts[1:]:
        result = np.strings.add(result, part)
    # ``add`` sums the widths of its inputs; wide arrays make every later copy slower.
    width = int(np.strings.str_len(result).max()) if result.size else 1
    return result.astype(f"U{max(width, 1)}")


def nullable(values: Column, present: Column) -> Column:
    """Return an object array holding Python values where ``present`` and ``None`` elsewhere."""
    result: Column = np.full(len(values), None, dtype=object)
    result[present] = values[present].tolist()
    return result


def _utc_instants(days: Column, local_hours: Column, minutes: Column) -> Column:
    """Return UTC instants (datetime64[s]) for local China times on the given days."""
    seconds = (local_hours.astype(np.int64) - CHINA_UTC_OFFSET_HOURS) * 3600 + minutes.astype(
        np.int64
    ) * 60
    instants: Column = days.astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    return instants


# --- debtors ----------------------------------------------------------------------------


def _accounts_per_debtor(
    rng: np.random.Generator, accounts: int, flavour: Flavour
) -> tuple[Column, int]:
    """Return each account's debtor position and the number of debtors."""
    # Every debtor has at least one account, so ``accounts`` draws always cover the total.
    counts = weighted_choice(rng, flavour.accounts_per_debtor, accounts) + 1
    ends = np.cumsum(counts)
    debtor_count = int(np.searchsorted(ends, accounts)) + 1
    counts = counts[:debtor_count].copy()
    counts[-1] -= int(ends[debtor_count - 1]) - accounts
    return np.repeat(np.arange(debtor_count), counts), debtor_count


@dataclass(frozen=True)
class _Regions:
    codes: Column  # (n_districts, 6) ASCII codes
    province: Column
    city: Column
    district: Column
    area_code: Column
    landline_digits: Column
    weight: Column


def _region_table() -> _Regions:
    codes, provinces, cities, districts, area_codes, landline_digits, weights = (
        [],
        [],
        [],
        [],
        [],
        [],
        [],
    )
    for province in reference.PROVINCES:
        # The first city listed is the capital or largest: it gets twice the weight of the others.
        city_weights = np.array([2.0] + [1.0] * (len(province.cities) - 1))
        city_weights /= city_weights.sum()
        for city, city_weight in zip(province.cities, city_weights, strict=True):
            for code, district in city.districts:
                codes.append([ord(ch) for ch in code])
                provinces.append(province.name)
                cities.append(city.name)
                districts.append(district)
                area_codes.append(city.area_code)
                landline_digits.append(city.landline_digits)
                weights.append(province.population_millions * city_weight / len(city.districts))
    return _Regions(
        codes=np.array(codes, dtype=np.uint8),
        province=np.array(provinces),
        city=np.array(cities),
        district=np.array(districts),
        area_code=np.array(area_codes),
        landline_digits=np.array(landline_digits),
        weight=np.array(weights),
    )


REGIONS = _region_table()
_SURNAMES = np.array([surname for surname, _ in reference.SURNAMES])
_SURNAME_WEIGHTS = np.array([weight for _, weight in reference.SURNAMES])
_GIVEN = (np.array(reference.GIVEN_FEMALE), np.array(reference.GIVEN_MALE))


def person_names(
    rng: np.random.Generator, male: Column, *, surnames: Column | None = None
) -> Column:
    """Return plausible names: a frequency-weighted surname and a one- or two-character name."""
    size = len(male)
    if surnames is None:
        surnames = _SURNAMES[weighted_choice(rng, _SURNAME_WEIGHTS, size)]
    first = np.where(
        male,
        _GIVEN[1][rng.integers(0, len(_GIVEN[1]), size)],
        _GIVEN[0][rng.integers(0, len(_GIVEN[0]), size)],
    )
    second = np.where(
        male,
        _GIVEN[1][rng.integers(0, len(_GIVEN[1]), size)],
        _GIVEN[0][rng.integers(0, len(_GIVEN[0]), size)],
    )
    two_characters = rng.random(size) < 0.8
    return concat(surnames, first, np.where(two_characters, second, ""))


_RESIDENT_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_RESIDENT_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)


def resident_ids(
    rng: np.random.Generator, region_codes: Column, birth_dates: Column, male: Column
) -> Column:
    """Return 18-digit resident ids (GB 11643) for the given regions, birth dates and sexes."""
    size = len(birth_dates)
    digits = np.empty((size, 18), dtype=np.uint8)
    digits[:, :6] = region_codes
    birth = np.strings.replace(np.datetime_as_string(birth_dates, unit="D"), "-", "").astype("S8")
    digits[:, 6:14] = birth.view(np.uint8).reshape(size, 8)
    digits[:, 14:16] = _random_digits(rng, size, 2)
    # The 17th digit is odd for men and even for women.
    parity = rng.integers(0, 5, size) * 2 + male.astype(np.int64)
    digits[:, 16] = parity + ord("0")
    total = ((digits[:, :17].astype(np.int64) - ord("0")) * _RESIDENT_WEIGHTS).sum(axis=1)
    digits[:, 17] = _RESIDENT_CHECK[total % 11]
    return _digits_to_strings(digits)


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2])
_USCC_VALUE = np.full(128, -1, dtype=np.int64)
for _value, _character in enumerate(_USCC_ALPHABET):
    _USCC_VALUE[ord(_character)] = _value
_ORG_VALUE = np.full(128, -1, dtype=np.int64)
for _character in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _ORG_VALUE[ord(_character)] = int(_character, 36)
_USCC_CODES = np.frombuffer(_USCC_ALPHABET.encode(), dtype=np.uint8)


def credit_codes(rng: np.random.Generator, region_codes: Column) -> Column:
    """Return unified social credit codes (GB 32100) of enterprises registered in the regions."""
    size = len(region_codes)
    codes = np.empty((size, 18), dtype=np.uint8)
    codes[:, 0] = ord("9")  # registered by market regulation
    codes[:, 1] = ord("1")  # an enterprise
    codes[:, 2:8] = region_codes
    # The organisation code (GB 11714): eight characters and its own check character.
    codes[:, 8:16] = _random_digits(rng, size, 8)
    issued_after_2015 = rng.random(size) < 0.6
    codes[issued_after_2015, 8] = ord("M")
    codes[issued_after_2015, 9] = ord("A")
    codes[issued_after_2015, 10:16] = _USCC_CODES[
        rng.integers(0, 31, (int(issued_after_2015.sum()), 6))
    ]
    organisation = (_ORG_VALUE[codes[:, 8:16]] * _ORG_WEIGHTS).sum(axis=1)
    organisation_check = 11 - organisation % 11
    codes[:, 16] = np.where(
        organisation_check == 11,
        ord("0"),
        np.where(organisation_check == 10, ord("X"), organisation_check + ord("0")),
    )
    total = (_USCC_VALUE[codes[:, :17]] * _USCC_WEIGHTS).sum(axis=1)
    codes[:, 17] = _USCC_CODES[(31 - total % 31) % 31]
    return _digits_to_strings(codes)


_MOBILE_PREFIXES = np.array(
    [[ord(ch) for ch in prefix] for prefix, _ in reference.MOBILE_PREFIXES], dtype=np.uint8
)
_MOBILE_WEIGHTS = np.array([weight for _, weight in reference.MOBILE_PREFIXES])


def mobile_numbers(rng: np.random.Generator, size: int) -> Column:
    """Return 11-digit mainland mobile numbers with real operator prefixes."""
    digits = np.empty((size, 11), dtype=np.uint8)
    digits[:, :3] = _MOBILE_PREFIXES[weighted_choice(rng, _MOBILE_WEIGHTS, size)]
    digits[:, 3:] = _random_digits(rng, size, 8)
    return _digits_to_strings(digits)


def landline_numbers(rng: np.random.Generator, region: Column) -> Column:
    """Return landline numbers such as ``0755-26123456`` in each debtor's city."""
    size = len(region)
    local = _random_digits(rng, size, 8)
    local[:, 0] = rng.integers(2, 8, size) + ord("0")
    eight = _digits_to_strings(local)
    seven = np.strings.slice(eight, 0, 7)
    numbers = np.where(REGIONS.landline_digits[region] == 8, eight, seven)
    return concat(REGIONS.area_code[region], "-", numbers)


def company_names(rng: np.random.Generator, region: Column) -> Column:
    """Return company names such as 深圳市恒达物流有限公司 in each row's city."""
    size = len(region)
    words = np.array(reference.COMPANY_WORDS)[rng.integers(0, len(reference.COMPANY_WORDS), size)]
    industries = np.array(reference.INDUSTRIES)[rng.integers(0, len(reference.INDUSTRIES), size)]
    return concat(REGIONS.city[region], words, industries, "有限公司")


def _debtors(
    rng: np.random.Generator, flavour: Flavour, size: int, is_business: Column, today: np.datetime64
) -> tuple[Table, Column]:
    """Return the debtor table and each debtor's region row."""
    region = weighted_choice(rng, REGIONS.weight, size)
    male = rng.random(size) < 0.56
    age_years = np.minimum(
        rng.gamma(flavour.age_shape, flavour.age_scale, size) + flavour.age_floor, 64
    )
    birth_dates = today - (age_years.astype(np.int64) * 365.25 + rng.integers(0, 365, size)).astype(
        "timedelta64[D]"
    )
    # A quarter of debtors were born (and got their id) in another region than where they live.
    id_region = np.where(
        rng.random(size) < 0.25, weighted_choice(rng, REGIONS.weight, size), region
    )
    names = np.where(is_business, company_names(rng, region), person_names(rng, male))
    national_ids = np.where(
        is_business,
        credit_codes(rng, REGIONS.codes[region]),
        resident_ids(rng, REGIONS.codes[id_region], birth_dates, male),
    )
    employed = (rng.random(size) < 0.7) & ~is_business
    employers = nullable(company_names(rng, region), employed)
    birth_dates = np.where(is_business, np.datetime64("NaT", "D"), birth_dates)

    flags = rng.random((6, size))
    columns: dict[str, Column] = {
        "external_id": concat("D", np.strings.zfill(np.arange(1, size + 1).astype("U"), 8)),
        "kind": np.where(is_business, "business", "individual"),
        "name": names,
        "national_id": national_ids,
        "id_kind": np.where(is_business, "uscc", "resident_id"),
        "birth_date": birth_dates,
        "province": REGIONS.province[region],
        "city": REGIONS.city[region],
        "district": REGIONS.district[region],
        "timezone": np.full(size, "Asia/Shanghai"),
        "language": np.full(size, "zh-CN"),
        "employer": employers,
        "deceased": (flags[0] < 0.002) & ~is_business,
        "bankrupt": (flags[1] < 0.01) & is_business,
        "disputed": flags[2] < 0.01,
        "cease_contact": flags[3] < 0.005,
        "attorney_represented": flags[4] < 0.003,
        "hardship": flags[5] < 0.03,
        # Not stored: kept so contacts can pick names of the right sex and family.
        "_male": male,
    }
    return Table(columns), region


# --- delinquency paths and accounts -------------------------------------------------------


def _delinquency_paths(rng: np.random.Generator, accounts: int, flavour: Flavour) -> Column:
    """Return (accounts, 13) month-end DPD paths ending in the flavour's bucket spread.

    A pool three times larger is simulated forward through ``TRANSITIONS``; accounts are
    then drawn from it bucket by bucket, so the history has realistic roll and cure rates
    while today's buckets match ``flavour.bucket_shares``.
    """
    pool = max(accounts * 3, 3000)
    start_bucket = weighted_choice(rng, START_SHARES, pool)
    low = np.where(start_bucket == 0, 0, (start_bucket - 1) * 30 + 1)
    high = np.where(start_bucket == 7, 360, np.where(start_bucket == 0, 0, start_bucket * 30))
    days = (low + rng.random(pool) * (high - low + 1)).astype(np.int64)
    days = np.minimum(days, high)
    path = np.empty((pool, HISTORY_MONTHS + 1), dtype=np.int64)
    path[:, 0] = days
    table = np.cumsum(np.array(TRANSITIONS), axis=1)
    for month in range(1, HISTORY_MONTHS + 1):
        bucket = bucket_index(days)
        draw = rng.random(pool)
        thresholds = table[bucket]
        cure = draw < thresholds[:, 0]
        back = ~cure & (draw < thresholds[:, 1])
        roll = draw >= thresholds[:, 2]
        days = np.where(cure, 0, days)
        days = np.where(back, np.maximum(days - 30, 1), days)
        new_delinquent = roll & (bucket == 0)
        days = np.where(
            new_delinquent,
            rng.integers(1, 31, pool),
            np.where(roll & (bucket > 0), days + 30, days),
        )
        path[:, month] = days

    final_bucket = bucket_index(path[:, -1])
    ever_late = path.max(axis=1) > 0
    shares = np.asarray(flavour.bucket_shares)
    wanted = np.floor(shares / shares.sum() * accounts).astype(np.int64)
    wanted[1] += accounts - int(wanted.sum())
    chosen = []
    for target_bucket, count in enumerate(wanted):
        # Today's current accounts are in a collections portfolio because they were late this year.
        in_bucket = final_bucket == target_bucket
        members = np.flatnonzero(in_bucket & ever_late if target_bucket == 0 else in_bucket)
        if count and len(members):
            chosen.append(rng.choice(members, size=int(count), replace=len(members) < count))
    picked = np.concatenate(chosen)
    if len(picked) < accounts:  # only for tiny portfolios where a bucket was empty in the pool
        picked = np.concatenate(
            [picked, rng.choice(np.flatnonzero(final_bucket == 1), accounts - len(picked))]
        )
    chosen_paths: Column = path[rng.permutation(picked)]
    return chosen_paths


def _with_current_spells(path: Column) -> Column:
    """Make each account's past snapshots agree with an unbroken spell ending today."""
    today = path[:, -1:]
    spell = today - (np.arange(HISTORY_MONTHS, -1, -1) * SNAPSHOT_DAYS)[None, :]
    late = today > 0
    # Before the spell the account was current: any earlier delinquency had been paid.
    just_before = late & (spell <= 0) & (spell > -SNAPSHOT_DAYS)
    result: Column = np.where(late & (spell > 0), spell, np.where(just_before, 0, path))
    return result


def _accounts(
    rng: np.random.Generator,
    flavour: Flavour,
    debtor_of_account: Column,
    is_business: Column,
    path: Column,
    debtors: Table,
    today: np.datetime64,
) -> tuple[Table, Column, Column]:
    """Return the account table, each account's monthly installment and monthly rate."""
    size = len(debtor_of_account)
    names = [name for name, _ in flavour.products]
    product = np.array(names)[weighted_choice(rng, [share for _, share in flavour.products], size)]
    product = np.where(is_business[debtor_of_account], "sme_loan", product)
    terms = list(PRODUCT_TERMS.values())
    product_names = np.array(list(PRODUCT_TERMS))
    sorter = np.argsort(product_names)
    product_row = sorter[np.searchsorted(product_names, product, sorter=sorter)]

    def term(attribute: str) -> Column:
        return np.array([getattr(terms_row, attribute) for terms_row in terms])[product_row]

    median = term("median_principal_yuan") * flavour.balance_scale
    principal_yuan = rng.lognormal(np.log(median), term("sigma"))
    principal = np.maximum(np.rint(principal_yuan * 100), 10_000).astype(np.int64)
    monthly_rate = term("annual_rate") / 12
    is_card = product == "credit_card"
    remaining_share = rng.uniform(0.3, 0.95, size)
    original = principal / np.where(is_card, 1.0, remaining_share)
    term_months = term("term_months")
    installment = np.where(
        is_card,
        np.maximum(principal * 0.1, 10_000),
        original / term_months + original * monthly_rate * 0.6,
    )
    installment = np.rint(np.minimum(installment, principal)).astype(np.int64)
    credit_limit = (np.ceil(principal / rng.uniform(0.55, 1.0, size) / 100_000) * 100_000).astype(
        np.int64
    )

    days_past_due = path[:, -1]
    months_late = np.ceil(days_past_due / 30).astype(np.int64)
    interest = np.rint(principal * monthly_rate * (months_late + rng.random(size))).astype(np.int64)
    penalty = np.rint(
        principal
        * term("penalty_daily_rate")
        * np.minimum(days_past_due, 720)
        * rng.uniform(0.5, 1.0, size)
    ).astype(np.int64)
    fees = np.rint(installment * term("late_fee_share") * np.minimum(months_late, 6)).astype(
        np.int64
    )
    balance = principal + interest + fees + penalty
    overdue = np.where(
        days_past_due > 0,
        np.minimum(installment * months_late, principal + interest) + fees + penalty,
        0,
    )
    minimum_due = np.minimum(overdue + installment, balance)
    due_date = np.where(
        days_past_due > 0,
        today - days_past_due.astype("timedelta64[D]"),
        today + rng.integers(1, 29, size).astype("timedelta64[D]"),
    )

    month_end = today - (np.arange(HISTORY_MONTHS, -1, -1) * SNAPSHOT_DAYS).astype("timedelta64[D]")
    window_start = month_end[0]
    birth_dates = debtors["birth_date"][debtor_of_account]
    opened_on = window_start - rng.integers(30, 1500, size).astype("timedelta64[D]")
    adult = birth_dates + np.timedelta64(18 * 366, "D")
    opened_on = np.where(np.isnat(birth_dates), opened_on, np.maximum(opened_on, adult))

    # Charge-off happens at the month-end a delinquency first passes 180 days and never cures.
    charged_off = (days_past_due > 180) & (rng.random(size) < flavour.charge_off_share)
    not_over = path <= 180
    last_not_over = np.where(
        not_over.any(axis=1), HISTORY_MONTHS - np.argmax(not_over[:, ::-1], axis=1), -1
    )
    before_window = window_start - np.maximum(path[:, 0] - 181, 0).astype("timedelta64[D]")
    charged_off_on = np.where(
        last_not_over >= 0, month_end[np.clip(last_not_over + 1, 0, HISTORY_MONTHS)], before_window
    )
    charged_off_on = np.where(charged_off, charged_off_on, np.datetime64("NaT", "D"))

    status = np.where(days_past_due > 0, "delinquent", "current").astype("U16")
    placement_draw = rng.random(size)
    status = np.where(
        (days_past_due > 90) & ~charged_off & (placement_draw < 0.10), "agency", status
    )
    status = np.where(
        (days_past_due > 150) & ~charged_off & (placement_draw > 0.97), "legal", status
    )
    status = np.where(charged_off, "charged_off", status)
    disputed = (
        debtors["disputed"][debtor_of_account] & (days_past_due > 0) & (status == "delinquent")
    )
    status = np.where(disputed, "disputed", status)

    columns: dict[str, Column] = {
        "external_id": concat("A", np.strings.zfill(np.arange(1, size + 1).astype("U"), 9)),
        "debtor_index": debtor_of_account,
        "product": product,
        "currency": np.full(size, flavour.currency),
        "credit_limit": nullable(credit_limit, is_card),
        "principal": principal,
        "interest": interest,
        "fees": fees,
        "penalty": penalty,
        "minimum_due": minimum_due,
        "overdue_amount": overdue,
        "due_date": due_date,
        "days_past_due": days_past_due,
        "bucket": bucket_names(days_past_due),
        "status": status,
        "opened_on": opened_on,
        "charged_off_on": charged_off_on,
        # Which of the institution's demo agents works the account (-1: nobody yet).
        "agent_slot": _agent_slots(rng, (status == "delinquent") & (days_past_due <= 90)),
    }
    return Table(columns), installment, monthly_rate


def _agent_slots(rng: np.random.Generator, workable: Column) -> Column:
    """Give each demo agent a queue of up to ``AGENT_QUEUE`` early-delinquent accounts.

    The rest stay unassigned, as after a day's intake, for allocation to distribute.
    """
    slots = np.full(len(workable), -1, dtype=np.int64)
    queued = rng.permutation(np.flatnonzero(workable))[: DEMO_AGENTS * AGENT_QUEUE]
    slots[queued] = np.arange(len(queued)) % DEMO_AGENTS
    return slots


# --- contacts ---------------------------------------------------------------------------


def _contact_points(
    rng: np.random.Generator,
    debtors: Table,
    is_business: Column,
    region: Column,
    accounts: Table,
    debtor_of_account: Column,
    today: np.datetime64,
) -> Table:
    """Return every debtor's phones, emails, addresses and third-party contacts."""
    size = len(debtors)
    individual = np.flatnonzero(~is_business)
    business = np.flatnonzero(is_business)
    male = debtors["_male"]
    first_opened = np.full(size, np.datetime64("2100-01-01"), dtype="datetime64[D]")
    np.minimum.at(first_opened, debtor_of_account, accounts["opened_on"])
    blocks: list[dict[str, Column]] = []

    def block(
        owner: Column,
        *,
        kind: str,
        value: Column,
        relation: Column | str = "self",
        contact_name: Column | None = None,
        status: Column | str,
        source: Column | str,
        verified_days_ago: Column,
        rank: int,
    ) -> None:
        count = len(owner)
        verified = np.where(
            verified_days_ago >= 0,
            _utc_instants(
                today - verified_days_ago.astype("timedelta64[D]"),
                rng.integers(9, 19, count),
                rng.integers(0, 60, count),
            ),
            np.datetime64("NaT", "s"),
        )
        relation_column = np.broadcast_to(np.asarray(relation), (count,))
        is_self = relation_column == "self"
        consent = is_self & (kind == "mobile") & (rng.random(count) < 0.85)
        consent_at = np.where(
            consent,
            _utc_instants(
                first_opened[owner], rng.integers(9, 22, count), rng.integers(0, 60, count)
            ),
            np.datetime64("NaT", "s"),
        )
        blocks.append(
            {
                "debtor_index": owner,
                "kind": np.full(count, kind),
                "value": value,
                "relation": relation_column,
                "third_party": ~is_self,
                "contact_name": np.full(count, None, dtype=object)
                if contact_name is None
                else contact_name.astype(object),
                "status": np.broadcast_to(np.asarray(status), (count,)),
                "source": np.broadcast_to(np.asarray(source), (count,)),
                "verified_at": verified,
                # Mainland China keeps one time zone (Beijing time) for every number and address.
                "timezone": np.full(count, "Asia/Shanghai"),
                "opt_out_call": is_self & (rng.random(count) < 0.01),
                "opt_out_sms": is_self & (rng.random(count) < 0.03),
                "opt_out_email": (kind == "email") & (rng.random(count) < 0.05),
                "consent_automated": consent,
                "consent_recorded_at": consent_at,
                "consent_source": nullable(np.full(count, "loan_agreement"), consent),
                "_rank": np.full(count, rank),
            }
        )

    def days_ago(count: int, low: int, high: int) -> Column:
        return rng.integers(low, high, count)

    # The debtor's own mobile (for a business: the legal representative's), mostly current.
    everyone = np.arange(size)
    own_status = np.array(["valid", "unverified", "invalid", "wrong_party"])[
        weighted_choice(rng, [0.78, 0.10, 0.08, 0.04], size)
    ]
    own_phone = mobile_numbers(rng, size)
    # Skip-tracing signal: a few debtors share one phone number (family, or a common contact).
    sharers = (
        rng.choice(size, size=int(size * 0.012), replace=False)
        if size > 10
        else np.zeros(0, np.int64)
    )
    if len(sharers):
        hosts = sharers[rng.integers(0, max(1, len(sharers) // 3), len(sharers))]
        own_phone[sharers] = own_phone[hosts]
    own_verified = np.where(
        own_status == "valid",
        days_ago(size, 0, 365),
        np.where(own_status == "unverified", -1, days_ago(size, 200, 1200)),
    )
    block(
        everyone,
        kind="mobile",
        value=own_phone,
        status=own_status,
        source="core",
        verified_days_ago=own_verified,
        rank=0,
    )

    # An old number the debtor has since replaced.
    replaced = np.flatnonzero(rng.random(size) < 0.18)
    block(
        replaced,
        kind="mobile",
        value=mobile_numbers(rng, len(replaced)),
        status="superseded",
        source=np.array(["core", "crm"])[rng.integers(0, 2, len(replaced))],
        verified_days_ago=days_ago(len(replaced), 400, 1800),
        rank=1,
    )

    # A new number found by skip tracing for half of the debtors whose own number is dead.
    dead = np.flatnonzero(
        np.isin(own_status, ["invalid", "wrong_party"]) & (rng.random(size) < 0.5)
    )
    traced_status = np.where(rng.random(len(dead)) < 0.6, "unverified", "valid")
    block(
        dead,
        kind="mobile",
        value=mobile_numbers(rng, len(dead)),
        status=traced_status,
        source="skip_trace",
        verified_days_ago=np.where(traced_status == "valid", days_ago(len(dead), 0, 60), -1),
        rank=2,
    )

    # Email for about a third of individuals: QQ numbers and short handles.
    emailed = individual[rng.random(len(individual)) < 0.35]
    count = len(emailed)
    domain = np.array([name for name, _ in reference.EMAIL_DOMAINS])[
        weighted_choice(rng, [weight for _, weight in reference.EMAIL_DOMAINS], count)
    ]
    qq_number = rng.integers(10_000_000, 3_999_999_999, count).astype("U")
    letters = np.array(list("abcdefghijkmnpqrstuvwxyz"))
    handle = concat(
        letters[rng.integers(0, 24, count)],
        letters[rng.integers(0, 24, count)],
        letters[rng.integers(0, 24, count)],
        rng.integers(100, 99_999, count).astype("U"),
    )
    local_part = np.where(domain == "qq.com", qq_number, handle)
    email_status = np.where(rng.random(count) < 0.3, "valid", "unverified")
    block(
        emailed,
        kind="email",
        value=concat(local_part, "@", domain),
        status=email_status,
        source="crm",
        verified_days_ago=np.where(email_status == "valid", days_ago(count, 0, 700), -1),
        rank=3,
    )

    # Home (or registered business) address.
    roads = np.array(reference.ROADS)[rng.integers(0, len(reference.ROADS), size)]
    address = concat(
        REGIONS.province[region],
        np.where(REGIONS.province[region] == REGIONS.city[region], "", REGIONS.city[region]),
        REGIONS.district[region],
        roads,
        rng.integers(1, 400, size).astype("U"),
        "号",
    )
    flat = concat(
        rng.integers(1, 30, size).astype("U"),
        "栋",
        rng.integers(1, 6, size).astype("U"),
        "单元",
        rng.integers(1, 33, size).astype("U"),
        "0",
        rng.integers(1, 5, size).astype("U"),
        "室",
    )
    address = np.where(is_business, address, concat(address, flat))
    address_status = np.where(rng.random(size) < 0.7, "valid", "unverified")
    block(
        everyone,
        kind="address",
        value=address,
        status=address_status,
        source="core",
        verified_days_ago=np.where(address_status == "valid", days_ago(size, 30, 900), -1),
        rank=4,
    )

    # Work landline: every business, and some employed individuals.
    employed = debtors["employer"] != None  # noqa: E711
    wired = np.flatnonzero(is_business | (employed & (rng.random(size) < 0.4)))
    landline_status = np.array(["valid", "unverified", "invalid"])[
        weighted_choice(rng, [0.6, 0.25, 0.15], len(wired))
    ]
    block(
        wired,
        kind="landline",
        value=landline_numbers(rng, region[wired]),
        status=landline_status,
        source="core",
        verified_days_ago=np.where(
            landline_status == "unverified", -1, days_ago(len(wired), 30, 1000)
        ),
        rank=5,
    )

    # Third parties from the application form: spouse, relatives, colleagues, emergency contacts.
    slots = weighted_choice(rng, [0.10, 0.35, 0.40, 0.15], len(individual))
    owner = np.repeat(individual, slots)
    position = np.arange(len(owner)) - np.repeat(np.cumsum(slots) - slots, slots)
    relation_names = np.array(["spouse", "relative", "colleague", "emergency_contact"])
    relation = np.where(
        position == 0,
        relation_names[weighted_choice(rng, [0.35, 0.30, 0.10, 0.25], len(owner))],
        relation_names[1:][weighted_choice(rng, [0.45, 0.2, 0.35], len(owner))],
    )
    spouse = relation == "spouse"
    contact_male = np.where(spouse, ~male[owner], rng.random(len(owner)) < 0.5)
    same_family = (relation == "relative") & (rng.random(len(owner)) < 0.6)
    own_surname = np.strings.slice(np.asarray(debtors["name"][owner]).astype("U"), 0, 1)
    contact_names = person_names(rng, contact_male)
    contact_names = np.where(
        same_family, concat(own_surname, np.strings.slice(contact_names, 1, None)), contact_names
    )
    third_phone = mobile_numbers(rng, len(owner))
    # Some contacts are themselves debtors of the lender: another skip-tracing link.
    linked = rng.random(len(owner)) < 0.02
    third_phone[linked] = own_phone[rng.integers(0, size, int(linked.sum()))]
    third_status = np.array(["valid", "unverified", "invalid"])[
        weighted_choice(rng, [0.55, 0.35, 0.10], len(owner))
    ]
    block(
        owner,
        kind="mobile",
        value=third_phone,
        relation=relation,
        contact_name=contact_names,
        status=third_status,
        source="core",
        verified_days_ago=np.where(
            third_status == "unverified", -1, days_ago(len(owner), 30, 1000)
        ),
        rank=6,
    )

    # A business's guarantor.
    guaranteed = business[rng.random(len(business)) < 0.7]
    block(
        guaranteed,
        kind="mobile",
        value=mobile_numbers(rng, len(guaranteed)),
        relation="other",
        contact_name=person_names(rng, rng.random(len(guaranteed)) < 0.7),
        status="valid",
        source="core",
        verified_days_ago=days_ago(len(guaranteed), 30, 700),
        rank=7,
    )

    columns = {name: np.concatenate([part[name] for part in blocks]) for name in blocks[0]}
    order = np.lexsort((columns["_rank"], columns["debtor_index"]))
    columns = {name: values[order] for name, values in columns.items() if name != "_rank"}
    columns["external_id"] = concat(
        "C", np.strings.zfill(np.arange(1, len(order) + 1).astype("U"), 9)
    )
    return Table(columns)


def _consents(contact_points: Table) -> tuple[Table, Table]:
    """Split the consent flags off the contact points into one consent row per channel.

    Each flag stands for the same rows as the contact import's flag column of that name.
    """
    columns = dict(contact_points.columns)
    recorded_at = columns.pop("consent_recorded_at")
    consent_source = columns.pop("consent_source")
    parts: list[dict[str, Column]] = []
    for flag, (kind, channels) in IMPORT_FLAGS.items():
        held = np.flatnonzero(columns.pop(flag))
        consent = kind is ConsentKind.CONSENT
        for channel in sorted(channels):
            parts.append(
                {
                    "contact_index": held,
                    "channel": np.full(len(held), channel.value),
                    "kind": np.full(len(held), kind.value),
                    "source": consent_source[held]
                    if consent
                    else np.full(len(held), "import", dtype=object),
                    "recorded_at": recorded_at[held]
                    if consent
                    else np.full(len(held), np.datetime64("NaT", "s")),
                }
            )
    consents = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    return Table(columns), Table(consents)


# --- payments and history ---------------------------------------------------------------


def _payments(
    rng: np.random.Generator,
    flavour: Flavour,
    path: Column,
    accounts: Table,
    installment: Column,
    monthly_rate: Column,
    today: np.datetime64,
) -> Table:
    """Return twelve months of payments implied by each account's month-to-month DPD path."""
    before, after = path[:, :-1], path[:, 1:]
    size, months = before.shape
    regular = (before == 0) & (after == 0)
    cure = (before > 0) & (after == 0)
    back = (after > 0) & (after < before)
    stay = (after > 0) & (after == before)
    draw = rng.random((size, months))
    partial = ((before == 0) & (after > 0) & (draw < 0.15)) | (
        (after > before) & (before > 0) & (draw < 0.2)
    )
    paid = regular | cure | back | stay | partial
    # Months after a charge-off see only an occasional small payment.
    month_end = today - (np.arange(HISTORY_MONTHS, -1, -1) * SNAPSHOT_DAYS).astype("timedelta64[D]")
    charged_off_on = accounts["charged_off_on"]
    after_charge_off = ~np.isnat(charged_off_on)[:, None] & (
        month_end[None, :-1] >= charged_off_on[:, None]
    )
    paid &= ~after_charge_off | (draw < 0.05)

    account_index, month = np.nonzero(paid)
    count = len(account_index)
    unit = installment[account_index].astype(np.float64)
    scale = rng.random(count)
    months_late = np.ceil(before[account_index, month] / 30)
    amount = np.select(
        [
            regular[account_index, month],
            cure[account_index, month],
            back[account_index, month],
            stay[account_index, month],
        ],
        [unit, unit * (months_late + 1) * (1 + 0.1 * scale), unit * 2, unit * (0.8 + 0.4 * scale)],
        default=unit * (0.05 + 0.35 * scale),
    )
    amount = np.maximum(np.rint(amount), 100).astype(np.int64)
    on_time = regular[account_index, month]
    start = month_end[month]
    # At most 29 days into the month, so even today's last snapshot has no payment from the future.
    day = np.where(on_time, rng.integers(20, 30, count), rng.integers(0, 30, count))
    hour = np.where(
        on_time, rng.integers(6, 10, count), weighted_choice(rng, _DAYTIME_WEIGHTS, count) + 8
    )
    paid_at = _utc_instants(start + day.astype("timedelta64[D]"), hour, rng.integers(0, 60, count))

    channel_names = np.array([name for name, _ in flavour.channels])
    channel = channel_names[weighted_choice(rng, [weight for _, weight in flavour.channels], count)]
    channel = np.where(on_time & (rng.random(count) < 0.6), "direct_debit", channel)

    principal = accounts["principal"][account_index]
    applied_interest_regular = np.minimum(
        amount, np.rint(principal * monthly_rate[account_index]).astype(np.int64)
    )
    applied_penalty = np.where(on_time, 0, amount * 6 // 100)
    applied_fees = np.where(on_time, 0, amount * 4 // 100)
    applied_interest = np.where(on_time, applied_interest_regular, amount * 20 // 100)
    applied_principal = amount - applied_penalty - applied_fees - applied_interest

    order = np.lexsort((paid_at, account_index))
    columns: dict[str, Column] = {
        "account_index": account_index,
        "amount": amount,
        "currency": np.full(count, flavour.currency),
        "paid_at": paid_at,
        "channel": channel,
        "applied_penalty": applied_penalty,
        "applied_fees": applied_fees,
        "applied_interest": applied_interest,
        "applied_principal": applied_principal,
        "unapplied": np.zeros(count, dtype=np.int64),
    }
    columns = {name: values[order] for name, values in columns.items()}
    columns["external_id"] = concat("P", np.strings.zfill(np.arange(1, count + 1).astype("U"), 10))
    return Table(columns)


# Debtors pay between 08:00 and 22:00 local time, most at lunch and in the evening.
_DAYTIME_WEIGHTS = [2, 4, 5, 5, 8, 6, 4, 4, 4, 5, 8, 10, 9, 6]


EVENT_STATUSES = ("current", "delinquent", "charged_off", "agency", "legal", "disputed")


def _delinquency_events(path: Column, accounts: Table, today: np.datetime64) -> Table:
    """Return the bucket/status history: the state when the window opens, then every change."""
    size, snapshots = path.shape
    month_end = today - (np.arange(HISTORY_MONTHS, -1, -1) * SNAPSHOT_DAYS).astype("timedelta64[D]")
    bucket = bucket_index(path)
    charged_off_on = accounts["charged_off_on"]
    charged = ~np.isnat(charged_off_on)[:, None] & (month_end[None, :] >= charged_off_on[:, None])
    status = np.where(charged, 2, np.where(path > 0, 1, 0))
    # Today's placements (agency, legal) and disputes are recorded at the latest snapshot.
    status[:, -1] = [EVENT_STATUSES.index(name) for name in accounts["status"].tolist()]
    changed = np.ones((size, snapshots), dtype=bool)
    changed[:, 1:] = (bucket[:, 1:] != bucket[:, :-1]) | (status[:, 1:] != status[:, :-1])
    account_index, month = np.nonzero(changed)
    days = path[account_index, month]

    balance_now = (
        accounts["principal"] + accounts["interest"] + accounts["fees"] + accounts["penalty"]
    )[account_index]
    accrued_now = balance_now - accounts["principal"][account_index]
    days_now = np.maximum(accounts["days_past_due"][account_index], 1)
    # Earlier in the delinquency less interest and penalty had accrued.
    balance = (
        balance_now
        - accrued_now
        + np.rint(accrued_now * np.minimum(days / days_now, 1)).astype(np.int64)
    )

    previous_days = np.where(month > 0, path[account_index, np.maximum(month - 1, 0)], days)
    cause = np.where(month == 0, "import", np.where(days < previous_days, "payment", "cycle"))
    effective_at = _utc_instants(
        month_end[month], np.zeros(len(month), np.int64), np.zeros(len(month), np.int64)
    )
    return Table(
        {
            "account_index": account_index,
            "effective_at": effective_at,
            "recorded_at": effective_at + np.timedelta64(2 * 3600, "s"),
            "days_past_due": days,
            "bucket": np.array(BUCKETS)[bucket[account_index, month]],
            "status": np.array(EVENT_STATUSES)[status[account_index, month]],
            "balance": balance,
            "cause": cause,
            "superseded": np.zeros(len(month), dtype=bool),
        }
    )


# --- promises to pay ------------------------------------------------------------------------

PROMISE_GRACE_DAYS = 3
PROMISE_CHANNELS = (("call", 0.72), ("sms", 0.08), ("web", 0.1), ("visit", 0.05), ("email", 0.05))
# Chance of a promise in a month an account starts past due, with and without a payment that
# month: collectors get promises from debtors they reach, and those who pay promised first.
PROMISE_SHARE_PAID = 0.45
PROMISE_SHARE_UNPAID = 0.22
PROMISE_KEPT_IN_FULL = 0.8


def _promises(
    rng: np.random.Generator,
    flavour: Flavour,
    path: Column,
    accounts: Table,
    payments: Table,
    today: np.datetime64,
) -> Table:
    """Return a promise history consistent with the payments: kept where the month's payment
    covered it, partially kept where it fell short, broken where nothing came.

    A promise is resolved the day after its grace period (02:00 local), a kept one when the
    money arrived; one still inside its grace period today is pending.
    """
    before = path[:, :-1]
    size, months = before.shape
    month_start = today - (np.arange(HISTORY_MONTHS, 0, -1) * SNAPSHOT_DAYS).astype(
        "timedelta64[D]"
    )
    # The payment of each account-month (there is at most one), on its local calendar day.
    local_paid = payments["paid_at"] + np.timedelta64(CHINA_UTC_OFFSET_HOURS * 3600, "s")
    paid_day = local_paid.astype("datetime64[D]")
    paid_month = np.searchsorted(month_start, paid_day, side="right") - 1
    inside = (paid_month >= 0) & (paid_month < months)
    amount_paid = np.zeros((size, months), dtype=np.int64)
    day_paid = np.full((size, months), np.datetime64("NaT", "D"))
    instant_paid = np.full((size, months), np.datetime64("NaT", "s"))
    rows, cols = payments["account_index"][inside], paid_month[inside]
    amount_paid[rows, cols] = payments["amount"][inside]
    day_paid[rows, cols] = paid_day[inside]
    instant_paid[rows, cols] = payments["paid_at"][inside]

    charged_off_on = accounts["charged_off_on"]
    charged = ~np.isnat(charged_off_on)[:, None] & (month_start[None, :] >= charged_off_on[:, None])
    has_payment = amount_paid > 0
    draw = rng.random((size, months))
    chosen = (
        (before > 0)
        & ~charged
        & np.where(has_payment, draw < PROMISE_SHARE_PAID, draw < PROMISE_SHARE_UNPAID)
    )
    account_index, month = np.nonzero(chosen)
    count = len(account_index)
    paid = has_payment[account_index, month]
    start = month_start[month]
    payment_day = day_paid[account_index, month]
    payment_amount = amount_paid[account_index, month]

    # With a payment: promised up to six days before it, due up to four days after it.
    lead = rng.integers(0, 7, count).astype("timedelta64[D]")
    lag = rng.integers(0, 5, count).astype("timedelta64[D]")
    promised_paid = np.maximum(np.where(paid, payment_day, start) - lead, start)
    due_paid = np.where(paid, payment_day, start) + lag
    in_full = rng.random(count) < PROMISE_KEPT_IN_FULL
    stretch = 1.3 + 1.2 * rng.random(count)
    amount_with_payment = np.where(
        in_full, payment_amount, np.rint(payment_amount * stretch).astype(np.int64)
    )
    # Without one: promised early in the month, due within ten days, an instalment or so.
    promised_unpaid = start + rng.integers(0, 18, count).astype("timedelta64[D]")
    due_unpaid = promised_unpaid + rng.integers(2, 11, count).astype("timedelta64[D]")
    instalment = np.maximum(accounts["minimum_due"][account_index], 20_000)
    amount_without = (np.rint(instalment * (0.6 + 0.9 * rng.random(count)) / 100) * 100).astype(
        np.int64
    )
    promised_on = np.where(paid, promised_paid, promised_unpaid)
    due_date = np.where(paid, due_paid, due_unpaid)
    amount = np.maximum(np.where(paid, amount_with_payment, amount_without), 100)
    paid_amount = np.where(paid, payment_amount, 0)

    settle_day = due_date + np.timedelta64(PROMISE_GRACE_DAYS + 1, "D")
    kept = paid & (payment_amount >= amount)
    settled = settle_day <= today
    status = np.where(
        kept, "kept", np.where(~settled, "pending", np.where(paid, "partially_kept", "broken"))
    )
    resolved_at = np.where(
        kept,
        instant_paid[account_index, month],
        np.where(
            settled,
            _utc_instants(settle_day, np.full(count, 2), np.zeros(count, np.int64)),
            np.datetime64("NaT", "s"),
        ),
    )
    channel_names = np.array([name for name, _ in PROMISE_CHANNELS])
    channel = channel_names[weighted_choice(rng, [weight for _, weight in PROMISE_CHANNELS], count)]
    return Table(
        {
            "account_index": account_index,
            "amount": amount,
            "currency": np.full(count, flavour.currency),
            "promised_on": promised_on,
            "due_date": due_date,
            "channel": channel,
            "status": status,
            "paid_amount": paid_amount,
            "resolved_at": resolved_at,
        }
    )
