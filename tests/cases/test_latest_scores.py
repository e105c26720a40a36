"""Each account's newest score (the last written), as the cases stage reads it.

Read for the live cases' accounts only, the newest day's scores onwards in id order and the
accounts they miss by their own scores: the same rows as grouping every score, whatever the
order the days were scored in.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from recoup.cases import repository
from recoup.models import Account
from recoup.models.scoring import ModelVersion
from tests.analytics.helpers import account, score
from tests.factories import make_institution, make_model_version

DAY = date(2027, 3, 10)


def _score(session: Session, made: Account, model: ModelVersion, day: date, expected: int) -> None:
    score(session, made, model, day, "s", expected_recovery=expected, priority=float(expected))
    session.flush()


def test_the_last_written_score_of_each_account_asked(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    institution = make_institution(session, code="NEW")
    other_lender = make_institution(session, code="OLD")
    daily, today, late, unscored, cured, outside, backdated = (
        account(session, institution) for _ in range(7)
    )
    foreign = account(session, other_lender)
    first = make_model_version(session, institution.id, version="first")
    second = make_model_version(session, institution.id, version="second")
    theirs = make_model_version(session, other_lender.id, version="theirs")
    for made in (daily, late, cured):
        _score(session, made, first, DAY - timedelta(days=2), 100)
    _score(session, cured, first, DAY - timedelta(days=1), 150)  # not scored on the last day
    _score(session, daily, first, DAY, 200)
    _score(session, today, first, DAY, 300)
    _score(session, foreign, theirs, DAY, 999)
    _score(session, outside, first, DAY, 50)
    # Written after the last day's first score, dated earlier: still the newest written.
    _score(session, late, second, DAY - timedelta(days=5), 400)
    _score(session, late, first, DAY, 250)
    _score(session, daily, second, DAY, 500)  # a second model's score of the day, written last
    _score(session, backdated, first, DAY, 600)
    _score(session, backdated, second, DAY - timedelta(days=3), 700)  # back-dated, written last

    asked = [daily.id, today.id, late.id, unscored.id, cured.id, foreign.id, backdated.id]
    rows = repository.latest_score_rows(session, institution_id=institution.id, accounts=asked)
    assert sorted(rows) == [
        (daily.id, 500, 500.0),
        (today.id, 300, 300.0),
        (late.id, 250, 250.0),
        (cured.id, 150, 150.0),
        (backdated.id, 700, 700.0),
    ]
    every = repository.latest_score_rows(session, institution_id=institution.id)
    assert sorted(rows) == sorted(row for row in every if row[0] in asked)

    # Many accounts missing from the last day are looked up in several statements.
    monkeypatch.setattr(repository, "LOOKUP_CHUNK", 1)
    assert sorted(
        repository.latest_score_rows(session, institution_id=institution.id, accounts=asked)
    ) == sorted(rows)


def test_no_scores_at_all(session: Session) -> None:
    institution = make_institution(session, code="NON")
    made = account(session, institution)
    assert (
        repository.latest_score_rows(session, institution_id=institution.id, accounts=[made.id])
        == []
    )
