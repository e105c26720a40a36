"""Locust users for ``bench/bench_load.py``: every user calls one endpoint, back to back.

The bench runs locust once per endpoint and sets the environment: ``RECOUP_LOAD_TARGET``
(``bare``, ``check``, ``payments`` or ``kpis``), the API key (``RECOUP_LOAD_API_KEY``), the
seeded debtors' ids and accounts' external ids (comma-separated) and the day the gate checks.

- ``bare``: ``GET /ping`` on the bare FastAPI app (the baseline).
- ``check``: ``POST /api/v1/compliance/check``, a call to a random debtor at a random hour.
- ``payments``: ``POST /api/v1/payments``, one new payment of 1.00 to a random account with
  a fresh ``Idempotency-Key``; one request in ten is sent again with the same key and body
  (a client's retry), which must be answered with the first answer, marked as a replay. The
  external id of every payment answered 201 goes to the file ``RECOUP_LOAD_LEDGER``. One
  task in twenty reverses the user's newest acknowledged payment instead (``POST
  /api/v1/payments/reversals``, a bounced cheque; 201 expected): the reversal re-lives the
  account and replays the payments made on it since.
- ``kpis``: ``GET /api/v1/kpis?as_of=<today>``.

A request counts as failed unless it gets the status a correct server gives (200, or 201 for
a new payment); locust's CSV keeps the failures by status.
"""

from __future__ import annotations

import os
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from locust import FastHttpUser, constant, task

TARGET = os.environ.get("RECOUP_LOAD_TARGET", "bare")
API_KEY = os.environ.get("RECOUP_LOAD_API_KEY", "")
DEBTOR_IDS = [int(item) for item in os.environ.get("RECOUP_LOAD_DEBTORS", "").split(",") if item]
ACCOUNTS = [item for item in os.environ.get("RECOUP_LOAD_ACCOUNTS", "").split(",") if item]
# The day the gate checks ask about (default: tomorrow, so the run never asks about the past).
CHECK_DAY = os.environ.get(
    "RECOUP_LOAD_CHECK_DAY", (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
)
# Where the external id of every payment answered 201 is written, one a line (if set).
LEDGER = os.environ.get("RECOUP_LOAD_LEDGER", "")
REPLAY_SHARE = 0.1
# Task weights: a payments run reverses one of its payments in one task of twenty; the other
# targets only call their endpoint.
CALL_WEIGHT = 19
REVERSAL_WEIGHT = 1 if TARGET == "payments" else 0
# The newest payments a user remembers for reversing.
REMEMBERED = 100


class Caller(FastHttpUser):
    """One client of the chosen endpoint, sending its next request as soon as it is answered."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.headers = {"X-API-Key": API_KEY} if API_KEY else {}
        self.paid: list[str] = []

    def _expect(self, method: str, url: str, name: str, expected: int, **kwargs: Any) -> Any:
        with self.client.request(
            method,
            url,
            name=name,
            headers=self.headers | kwargs.pop("headers", {}),
            catch_response=True,
            **kwargs,
        ) as response:
            if response.status_code != expected:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
            return response

    @task(CALL_WEIGHT)
    def call(self) -> None:
        if TARGET == "bare":
            self._expect("GET", "/ping", "bare GET /ping", 200)
        elif TARGET == "check":
            hour = self.rng.randint(9, 19)
            body = {
                "debtor_id": self.rng.choice(DEBTOR_IDS),
                "channel": "call",
                "party": "debtor",
                "at": f"{CHECK_DAY}T{hour:02d}:{self.rng.randint(0, 59):02d}:00+08:00",
            }
            self._expect(
                "POST", "/api/v1/compliance/check", "POST /compliance/check", 200, json=body
            )
        elif TARGET == "payments":
            self._payment()
        elif TARGET == "kpis":
            url = f"/api/v1/kpis?as_of={date.today().isoformat()}"
            self._expect("GET", url, "GET /kpis", 200)
        else:
            raise RuntimeError(f"unknown RECOUP_LOAD_TARGET {TARGET!r}")

    @task(REVERSAL_WEIGHT)
    def reverse(self) -> None:
        """Reverse this user's newest acknowledged payment (a payment first if it has none)."""
        if not self.paid:
            self._payment()
            return
        body = {"external_id": self.paid.pop(), "reason": "load test: cheque bounced"}
        self._expect(
            "POST",
            "/api/v1/payments/reversals",
            "POST /payments/reversals",
            201,
            json=body,
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )

    def _payment(self) -> None:
        body = {
            "external_id": f"LOAD-{uuid.uuid4().hex}",
            "account_external_id": self.rng.choice(ACCOUNTS),
            "amount": "1.00",
            "currency": "CNY",
            "paid_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "channel": "bank_transfer",
        }
        key = {"Idempotency-Key": str(uuid.uuid4())}
        first = self._expect(
            "POST", "/api/v1/payments", "POST /payments", 201, json=body, headers=key
        )
        if first.status_code != 201:
            return
        self.paid = [*self.paid[-(REMEMBERED - 1) :], body["external_id"]]
        if LEDGER:
            with open(LEDGER, "a", encoding="ascii") as ledger:
                ledger.write(f"{body['external_id']}\n")
        if self.rng.random() >= REPLAY_SHARE:
            return
        with self.client.request(
            "POST",
            "/api/v1/payments",
            name="POST /payments (retried, same key)",
            headers=self.headers | key,
            json=body,
            catch_response=True,
        ) as again:
            replayed = again.headers.get("Idempotent-Replayed") == "true"
            if again.status_code != 201 or not replayed or again.text != first.text:
                again.failure(
                    f"not the first answer replayed: {again.status_code} {again.text[:200]}"
                )
