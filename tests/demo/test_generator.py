"""The synthetic portfolio: deterministic, valid identity numbers and phones, sane money and buckets."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import phonenumbers
import pytest

from recoup.demo.generator import (
    AGENT_QUEUE,
    BUCKETS,
    COMMERCIAL_BANK,
    CONSUMER_FINANCE,
    HISTORY_MONTHS,
    SNAPSHOT_DAYS,
    Portfolio,
    generate_portfolio,
)
from recoup.portfolio.rules import (
    birth_date_from_resident_id,
    bucket_for,
    days_past_due_on,
    resident_id_problem,
    uscc_problem,
)

AS_OF = date(2026, 11, 28)


@pytest.fixture(scope="module")
def consumer() -> Portfolio:
    return generate_portfolio(accounts=6_000, seed=11, flavour=CONSUMER_FINANCE, as_of=AS_OF)


@pytest.fixture(scope="module")
def bank() -> Portfolio:
    return generate_portfolio(accounts=2_000, seed=11, flavour=COMMERCIAL_BANK, as_of=AS_OF)


def _as_lists(portfolio: Portfolio) -> dict[str, dict[str, list[object]]]:
    tables = (
        "debtors",
        "contact_points",
        "contact_point_consents",
        "accounts",
        "payments",
        "delinquency_events",
    )
    return {
        table: {name: values.tolist() for name, values in getattr(portfolio, table).columns.items()}
        for table in tables
    }


class TestDeterminism:
    def test_same_seed_gives_the_same_portfolio(self) -> None:
        first = generate_portfolio(accounts=500, seed=3, flavour=CONSUMER_FINANCE, as_of=AS_OF)
        second = generate_portfolio(accounts=500, seed=3, flavour=CONSUMER_FINANCE, as_of=AS_OF)
        assert _as_lists(first) == _as_lists(second)

    def test_another_seed_gives_another_portfolio(self) -> None:
        first = generate_portfolio(accounts=500, seed=3, flavour=CONSUMER_FINANCE, as_of=AS_OF)
        second = generate_portfolio(accounts=500, seed=4, flavour=CONSUMER_FINANCE, as_of=AS_OF)
        assert first.debtors["national_id"].tolist() != second.debtors["national_id"].tolist()
        assert first.accounts["principal"].tolist() != second.accounts["principal"].tolist()

    def test_the_two_lenders_differ_for_one_seed(self) -> None:
        consumer = generate_portfolio(accounts=300, seed=3, flavour=CONSUMER_FINANCE, as_of=AS_OF)
        bank = generate_portfolio(accounts=300, seed=3, flavour=COMMERCIAL_BANK, as_of=AS_OF)
        assert consumer.debtors["name"].tolist() != bank.debtors["name"].tolist()

    @pytest.mark.parametrize("accounts", [1, 2, 7, 40])
    def test_tiny_portfolios_have_exactly_the_accounts_asked_for(self, accounts: int) -> None:
        portfolio = generate_portfolio(
            accounts=accounts, seed=1, flavour=COMMERCIAL_BANK, as_of=AS_OF
        )
        assert len(portfolio.accounts) == accounts
        assert set(portfolio.accounts["debtor_index"].tolist()) == set(
            range(len(portfolio.debtors))
        )


class TestIdentityNumbers:
    def test_every_resident_id_passes_the_gb11643_checksum(
        self, consumer: Portfolio, bank: Portfolio
    ) -> None:
        for portfolio in (consumer, bank):
            debtors = portfolio.debtors
            ids = debtors["national_id"][debtors["id_kind"] == "resident_id"].tolist()
            assert ids
            problems = [
                (value, resident_id_problem(value)) for value in ids if resident_id_problem(value)
            ]
            assert problems == []

    def test_birth_date_in_the_id_matches_an_adult_age(self, consumer: Portfolio) -> None:
        debtors = consumer.debtors
        for national_id, birth in zip(
            debtors["national_id"].tolist(), debtors["birth_date"].tolist(), strict=True
        ):
            assert birth_date_from_resident_id(national_id) == birth
            age = (AS_OF - birth).days / 365.25
            assert 19 <= age <= 66

    def test_every_credit_code_passes_the_gb32100_checksum(self, bank: Portfolio) -> None:
        debtors = bank.debtors
        codes = debtors["national_id"][debtors["id_kind"] == "uscc"].tolist()
        assert len(codes) > 50
        assert [code for code in codes if uscc_problem(code)] == []
        assert all(code.startswith("91") for code in codes)

    def test_only_businesses_hold_sme_loans_and_consumer_finance_has_none(
        self, consumer: Portfolio, bank: Portfolio
    ) -> None:
        kind = bank.debtors["kind"][bank.accounts["debtor_index"]]
        assert set(kind[bank.accounts["product"] == "sme_loan"].tolist()) == {"business"}
        assert "sme_loan" not in consumer.accounts["product"].tolist()
        assert set(consumer.debtors["kind"].tolist()) == {"individual"}


class TestContacts:
    def test_every_mobile_is_a_valid_cn_mobile(self, consumer: Portfolio, bank: Portfolio) -> None:
        for portfolio in (consumer, bank):
            contacts = portfolio.contact_points
            for value in contacts["value"][contacts["kind"] == "mobile"].tolist():
                number = phonenumbers.parse(value, "CN")
                assert len(value) == 11
                assert phonenumbers.is_valid_number(number), value
                assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE, (
                    value
                )

    def test_every_landline_is_a_valid_cn_fixed_line(self, bank: Portfolio) -> None:
        contacts = bank.contact_points
        landlines = contacts["value"][contacts["kind"] == "landline"].tolist()
        assert landlines
        for value in landlines:
            number = phonenumbers.parse(value, "CN")
            assert phonenumbers.is_valid_number(number), value

    def test_some_contacts_are_invalid_or_outdated_and_verified_long_ago(
        self, consumer: Portfolio
    ) -> None:
        contacts = consumer.contact_points
        status = contacts["status"]
        for wanted in ("valid", "unverified", "invalid", "wrong_party", "superseded"):
            assert (status == wanted).any(), wanted
        superseded = contacts["verified_at"][status == "superseded"]
        oldest_allowed = np.datetime64(AS_OF - timedelta(days=365), "s")
        assert (superseded < oldest_allowed).all()

    def test_third_party_contacts_carry_their_relation_and_name(self, consumer: Portfolio) -> None:
        contacts = consumer.contact_points
        relation = contacts["relation"]
        assert {"spouse", "relative", "colleague", "emergency_contact"} <= set(relation.tolist())
        assert (contacts["third_party"] == (relation != "self")).all()
        names = contacts["contact_name"][contacts["third_party"]]
        assert all(isinstance(name, str) and len(name) >= 2 for name in names.tolist())

    def test_the_same_phone_is_shared_by_a_few_debtors(self, consumer: Portfolio) -> None:
        contacts = consumer.contact_points
        own = (contacts["relation"] == "self") & (contacts["kind"] == "mobile")
        values, owners = contacts["value"][own], contacts["debtor_index"][own]
        debtors_per_phone: dict[str, set[int]] = {}
        for value, owner in zip(values.tolist(), owners.tolist(), strict=True):
            debtors_per_phone.setdefault(value, set()).add(owner)
        shared = [phone for phone, debtors in debtors_per_phone.items() if len(debtors) > 1]
        assert 0 < len(shared) < len(consumer.debtors) * 0.05

    def test_every_debtor_has_an_own_mobile_and_an_address(self, consumer: Portfolio) -> None:
        contacts = consumer.contact_points
        own_mobile = contacts["debtor_index"][
            (contacts["relation"] == "self") & (contacts["kind"] == "mobile")
        ]
        addressed = contacts["debtor_index"][contacts["kind"] == "address"]
        everyone = set(range(len(consumer.debtors)))
        assert set(own_mobile.tolist()) == everyone
        assert set(addressed.tolist()) == everyone


class TestBuckets:
    def test_bucket_shares_follow_the_flavour(self, consumer: Portfolio) -> None:
        buckets = consumer.accounts["bucket"]
        shares = np.array([(buckets == name).mean() for name in BUCKETS])
        target = np.array(CONSUMER_FINANCE.bucket_shares)
        assert np.abs(shares - target).max() < 0.01
        assert shares.argmax() == BUCKETS.index("M1")
        assert (np.diff(shares[1:7]) <= 0).all()

    def test_bucket_and_due_date_agree_with_days_past_due(self, consumer: Portfolio) -> None:
        accounts = consumer.accounts
        for days, bucket, due in zip(
            accounts["days_past_due"].tolist(),
            accounts["bucket"].tolist(),
            accounts["due_date"].tolist(),
            strict=True,
        ):
            assert bucket == bucket_for(days)
            assert days_past_due_on(oldest_unpaid_due=due, as_of=AS_OF) == days

    def test_charged_off_accounts_are_past_180_days(self, consumer: Portfolio) -> None:
        accounts = consumer.accounts
        charged = accounts["status"] == "charged_off"
        assert charged.any()
        assert (accounts["days_past_due"][charged] > 180).all()
        assert not np.isnat(accounts["charged_off_on"][charged]).any()
        assert np.isnat(accounts["charged_off_on"][~charged]).all()

    def test_agents_get_only_early_delinquent_accounts(self, consumer: Portfolio) -> None:
        accounts = consumer.accounts
        assigned = accounts["agent_slot"] >= 0
        assert set(accounts["agent_slot"][assigned].tolist()) == {0, 1, 2}
        assert set(accounts["bucket"][assigned].tolist()) <= {"M1", "M2", "M3"}
        assert set(accounts["status"][assigned].tolist()) == {"delinquent"}
        queues = np.bincount(accounts["agent_slot"][assigned])
        assert (queues == AGENT_QUEUE).all()


class TestBalances:
    def test_parts_are_non_negative_and_dues_fit_the_balance(
        self, consumer: Portfolio, bank: Portfolio
    ) -> None:
        for portfolio in (consumer, bank):
            accounts = portfolio.accounts
            parts = [accounts[name] for name in ("principal", "interest", "fees", "penalty")]
            balance = sum(parts)
            assert all((part >= 0).all() for part in parts)
            assert (accounts["principal"] > 0).all()
            assert (accounts["overdue_amount"] <= balance).all()
            assert (accounts["minimum_due"] <= balance).all()
            assert (accounts["overdue_amount"][accounts["days_past_due"] == 0] == 0).all()
            assert accounts["principal"].dtype == np.int64

    def test_the_bank_lends_more_per_account(self, consumer: Portfolio, bank: Portfolio) -> None:
        assert np.median(bank.accounts["principal"]) > 1.5 * np.median(
            consumer.accounts["principal"]
        )

    def test_credit_limits_only_on_cards_and_above_the_principal(self, bank: Portfolio) -> None:
        accounts = bank.accounts
        for product, limit, principal in zip(
            accounts["product"].tolist(),
            accounts["credit_limit"].tolist(),
            accounts["principal"].tolist(),
            strict=True,
        ):
            if product == "credit_card":
                assert isinstance(limit, int)
                assert limit >= principal
            else:
                assert limit is None


class TestPaymentsAndHistory:
    def test_payments_split_exactly_and_fall_in_the_last_twelve_months(
        self, consumer: Portfolio
    ) -> None:
        payments = consumer.payments
        applied = sum(
            payments[name]
            for name in ("applied_penalty", "applied_fees", "applied_interest", "applied_principal")
        )
        assert (payments["amount"] > 0).all()
        assert (applied + payments["unapplied"] == payments["amount"]).all()
        for name in ("applied_penalty", "applied_fees", "applied_interest", "applied_principal"):
            assert (payments[name] >= 0).all()
        start = np.datetime64(AS_OF - timedelta(days=HISTORY_MONTHS * SNAPSHOT_DAYS + 1), "s")
        assert (payments["paid_at"] > start).all()
        assert (payments["paid_at"] < np.datetime64(AS_OF, "s")).all()
        assert {"alipay", "wechat_pay", "bank_transfer", "direct_debit"} <= set(
            payments["channel"].tolist()
        )
        assert len(set(payments["external_id"].tolist())) == len(payments)

    def test_history_opens_with_every_account_and_ends_in_todays_bucket(
        self, consumer: Portfolio
    ) -> None:
        events = consumer.delinquency_events
        accounts = consumer.accounts
        account_index = events["account_index"]
        assert (np.diff(account_index) >= 0).all()
        first = np.unique(account_index, return_index=True)[1]
        assert len(first) == len(accounts)
        assert set(events["cause"][first].tolist()) == {"import"}
        last = np.r_[first[1:] - 1, len(account_index) - 1]
        assert events["bucket"][last].tolist() == accounts["bucket"].tolist()
        assert events["status"][last].tolist() == accounts["status"].tolist()

    def test_roll_and_cure_rates_look_like_a_collections_book(self, consumer: Portfolio) -> None:
        events = consumer.delinquency_events
        same_account = events["account_index"][1:] == events["account_index"][:-1]
        before, after = events["bucket"][:-1][same_account], events["bucket"][1:][same_account]
        from_m1 = before == "M1"
        cured = (after[from_m1] == "M0").mean()
        rolled = (after[from_m1] == "M2").mean()
        assert 0.2 < cured < 0.8
        assert 0.2 < rolled < 0.8
        assert (events["cause"][1:][same_account][after == "M0"] == "payment").all()
