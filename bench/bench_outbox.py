"""Benchmark the outbox dispatcher against local SMS (HTTP) and SMTP servers.

    .venv/bin/python bench/bench_outbox.py [--sms N] [--emails N] [--postgres URL] [--small]
        [--campaign N] [--before N] [--campaign-only]

Queues N text messages and N emails (each through the gate, as a campaign would), then times
the dispatcher sending them: the gate asked again for every message (in batches), the
sending marks committed before the provider is called, the provider call, the results and the
contact log written in bulk. Targets: >= 500 SMS/s over HTTP, >= 200 emails/s over SMTP. In
the same run it times bare ``httpx`` posts and bare ``smtplib`` sends of the same messages to
the same servers and prints the ratio. The servers run in a process of their own (the other
core); the figures are per wall second, on a machine that may be shared.

Then it times queueing a campaign to N accounts (10,000 by default): the campaign's job
(``outbox.queue_campaign``, as a worker runs it: the gate asked in batches, set-based render,
bulk insert, a commit per batch) against queueing the same campaign one message at a time
(``queue_message``: gate check and render per message, the path campaigns took before) over
the first ``--before`` accounts in the same run (rolled back), and prints the ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

TEXT = "您好，您的账单已逾期，请及时还款。"
SMS_TARGET = 500
EMAIL_TARGET = 200
QUEUED_AT = datetime(2025, 3, 4, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, inside the hours
SENT_AT = datetime(2025, 3, 4, 2, 5, tzinfo=UTC)


def _environment(database: str | None) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="recoup-bench-outbox-"))
    os.environ["RECOUP_DATA_DIR"] = str(scratch)
    os.environ["RECOUP_DATABASE_URL"] = database or f"sqlite:///{scratch / 'bench.db'}"
    os.environ["RECOUP_KEYRING_FILE"] = str(scratch / "keyring.json")


def _seed(count_sms: int, count_email: int, sms_url: str, smtp_port: int) -> str:
    from tests.factories import make_account, make_contact_point, make_debtor, make_institution
    from tests.outbox.helpers import approved_template

    from recoup import db
    from recoup.institutions import service as institutions_service
    from recoup.models import Base
    from recoup.outbox import service

    Base.metadata.create_all(db.get_engine())
    with db.unit_of_work() as session:
        institution = make_institution(session, code="BENCH")
        institutions_service.update_settings(
            session,
            institution=institution,
            changes={
                "channels": {
                    "quiet_start": None,
                    "quiet_end": None,
                    "sms_provider": "gateway",
                    "sms_gateway_url": sms_url,
                    "sms_per_second": 10_000,
                    "email_provider": "smtp",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": smtp_port,
                    "email_per_second": 10_000,
                }
            },
            actor="bench",
        )
        approved_on = date(2025, 3, 1)
        sms_template = approved_template(session, institution, channel="sms", today=approved_on)
        email_template = approved_template(session, institution, channel="email", today=approved_on)
        for number in range(max(count_sms, count_email)):
            debtor = make_debtor(session, institution, national_id=None)
            account = make_account(session, debtor)
            targets = []
            if number < count_sms:
                phone = make_contact_point(session, debtor, value=f"139{number:08d}")
                targets.append(("sms", phone.id, sms_template.id))
            if number < count_email:
                email = make_contact_point(
                    session, debtor, kind="email", value=f"debtor{number}@example.com"
                )
                targets.append(("email", email.id, email_template.id))
            for channel, point_id, template_id in targets:
                queued = service.queue_message(
                    session, institution_id=institution.id, debtor_id=debtor.id,
                    contact_point_id=point_id, account_id=account.id, channel=channel,
                    template_id=template_id, actor="bench", scheduled_at=QUEUED_AT,
                    now=QUEUED_AT,
                )  # fmt: skip
                assert queued.message is not None, queued.reasons
            if number % 500 == 499:
                session.commit()
    return "BENCH"


def _seed_campaign(count: int) -> tuple[int, int, str]:
    """An institution of ``count`` debtors, each with a mobile and an open account."""
    from tests.factories import make_account, make_contact_point, make_debtor, make_institution
    from tests.outbox.helpers import approved_template

    from recoup import db
    from recoup.institutions import service as institutions_service
    from recoup.models import Base

    Base.metadata.create_all(db.get_engine())
    with db.unit_of_work() as session:
        institution = make_institution(session, code="BENCHC")
        institutions_service.update_settings(
            session,
            institution=institution,
            changes={"channels": {"quiet_start": None, "quiet_end": None}},
            actor="bench",
        )
        template = approved_template(session, institution, channel="sms")
        manager = "bench.manager"
        for number in range(count):
            debtor = make_debtor(session, institution, national_id=None)
            make_contact_point(session, debtor, value=f"137{number:08d}")
            make_account(session, debtor, days_past_due=35)
            if number % 1_000 == 999:
                session.commit()
        return institution.id, template.id, manager


def _campaign_before(institution_id: int, template_id: int, count: int) -> tuple[int, float]:
    """Queue the first ``count`` accounts one message at a time (rolled back); time it."""
    from sqlalchemy.orm import Session

    from recoup import db
    from recoup.contact.channels import Channel
    from recoup.kit.clock import utcnow
    from recoup.outbox import repository, service

    with Session(db.get_engine()) as session:
        accounts = repository.segment_accounts(
            session, institution_id=institution_id, buckets=(), segments=(), grades=(),
            limit=count,
        )  # fmt: skip
        points = repository.own_points(
            session, institution_id=institution_id,
            debtor_ids={account.debtor_id for account in accounts}, kinds={"mobile"},
        )  # fmt: skip
        now = utcnow()
        started = time.perf_counter()
        queued = 0
        for account in accounts:
            result = service.queue_message(
                session, institution_id=institution_id, debtor_id=account.debtor_id,
                contact_point_id=points[account.debtor_id].id, account_id=account.id,
                channel=Channel.SMS, template_id=template_id, actor="bench", scheduled_at=now,
                now=now, campaign_id=None,
            )  # fmt: skip
            queued += result.message is not None
        seconds = time.perf_counter() - started
        session.rollback()
    return queued, seconds


def _campaign_after(institution_id: int, template_id: int, actor: str) -> tuple[int, int, float]:
    """Send the campaign and run its queueing job as a worker does; time the job."""
    from sqlalchemy import select

    from recoup import db
    from recoup.identity.scoping import institution_scope
    from recoup.kit import jobs
    from recoup.models.jobs import Job
    from recoup.models.outbox import OutboxCampaign
    from recoup.outbox import service

    with db.unit_of_work() as session:
        campaign = service.send_campaign(
            session, principal=institution_scope(institution_id, actor=actor),
            institution_id=institution_id, name="bench", channel="sms",
            template_id=template_id, segment=service.Segment(),
        )  # fmt: skip
        campaign_id = campaign.id
    with db.unit_of_work() as session:
        job_id = session.scalars(
            select(Job.id).where(Job.idempotency_key == f"campaign:{campaign_id}")
        ).one()
    started = time.perf_counter()
    assert jobs.run_job(job_id) == "done"
    seconds = time.perf_counter() - started
    with db.unit_of_work() as session:
        done = session.get(OutboxCampaign, campaign_id)
        assert done is not None
        assert done.status == "queued"
        return done.queued, done.blocked, seconds


def _campaign(count: int, before: int) -> None:
    seed_started = time.perf_counter()
    institution_id, template_id, actor = _seed_campaign(count)
    print(f"seeded {count:,} accounts for a campaign in {time.perf_counter() - seed_started:.1f} s")
    one_queued, one_seconds = _campaign_before(institution_id, template_id, min(before, count))
    queued, blocked, seconds = _campaign_after(institution_id, template_id, actor)
    assert queued + blocked == count, (queued, blocked)
    one_rate, rate = one_queued / one_seconds, queued / seconds
    print(
        f"campaign queueing, {count:,} accounts: {rate:,.0f} messages/s in its job "
        f"({queued:,} queued, {blocked:,} blocked, {seconds:.1f} s) vs {one_rate:,.0f}/s one "
        f"message at a time (first {one_queued:,}, rolled back): {rate / one_rate:.1f}x"
    )


def _dispatch(channel: str) -> tuple[int, float]:
    from sqlalchemy import update

    from recoup import db
    from recoup.models.outbox import OutboxMessage
    from recoup.outbox import dispatch

    # Only this channel is due: the other waits for its own run.
    with db.unit_of_work() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.channel != channel, OutboxMessage.status == "queued")
            .values(scheduled_at=datetime(2025, 3, 5, tzinfo=UTC))
        )
    started = time.perf_counter()
    with db.unit_of_work() as session:
        report = dispatch.dispatch(session, now=SENT_AT)
    seconds = time.perf_counter() - started
    with db.unit_of_work() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "queued")
            .values(scheduled_at=QUEUED_AT)
        )
    return report.sent, seconds


def _bare_http(url: str, count: int) -> float:
    import httpx

    client = httpx.Client(timeout=10)
    started = time.perf_counter()

    def post(number: int) -> None:
        key = f"bare-{number}"
        response = client.post(
            f"{url}/messages",
            json={"to": f"139{number:08d}", "from": None, "text": TEXT, "reference": key,
                  "status_callback": None},
            headers={"Idempotency-Key": key},
        )  # fmt: skip
        response.raise_for_status()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(post, range(count)))
    seconds = time.perf_counter() - started
    client.close()
    return seconds


def _bare_smtp(port: int, count: int) -> float:
    import smtplib
    from email.message import EmailMessage

    started = time.perf_counter()
    connection = smtplib.SMTP("127.0.0.1", port)
    for number in range(count):
        message = EmailMessage()
        message["From"] = "collections@example.invalid"
        message["To"] = f"debtor{number}@example.com"
        message["Subject"] = "reminder"
        message["Message-ID"] = f"<bare-{number}@example.invalid>"
        message.set_content("Dear debtor, your account is overdue.")
        message.add_alternative("<p>Dear debtor, your account is overdue.</p>", subtype="html")
        connection.send_message(message)
    connection.quit()
    return time.perf_counter() - started


def _servers(pipe: Connection) -> None:
    """Serve the local SMS and SMTP providers in their own process until told to stop."""
    from tests.outbox.servers import sms_server, smtp_server

    with sms_server() as (url, provider), smtp_server() as (port, mailbox):
        pipe.send((url, port))
        while (command := pipe.recv()) != "stop":
            assert command == "count"
            pipe.send((provider.total, len(mailbox.messages)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sms", type=int, default=3_000)
    parser.add_argument("--emails", type=int, default=1_500)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL instead of SQLite")
    parser.add_argument("--small", action="store_true", help="300 SMS and 150 emails")
    parser.add_argument("--campaign", type=int, default=10_000, help="campaign accounts (0: skip)")
    parser.add_argument("--before", type=int, default=1_000, help="accounts queued one by one")
    parser.add_argument("--campaign-only", action="store_true", help="only the campaign figure")
    args = parser.parse_args()
    if args.small:
        args.sms, args.emails, args.campaign = 300, 150, 1_000
    _environment(args.postgres)
    if args.campaign_only:
        _campaign(args.campaign, args.before)
        return
    # The providers run in a process of their own, as real ones would, on the other core.
    ours, theirs = multiprocessing.Pipe()
    servers = multiprocessing.get_context("fork").Process(target=_servers, args=(theirs,))
    servers.start()
    try:
        url, port = ours.recv()
        seed_started = time.perf_counter()
        _seed(args.sms, args.emails, url, port)
        print(
            f"queued {args.sms} SMS and {args.emails} emails through the gate in "
            f"{time.perf_counter() - seed_started:.1f} s"
        )
        sent, seconds = _dispatch("sms")
        ours.send("count")
        delivered, _ = ours.recv()
        assert delivered == sent == args.sms, (delivered, sent)
        bare = _bare_http(url, args.sms)
        sms_rate, bare_rate = sent / seconds, args.sms / bare
        verdict = "ok" if sms_rate >= SMS_TARGET else "BELOW TARGET"
        print(
            f"SMS over HTTP: {sms_rate:,.0f}/s through the dispatcher (gate re-check, marks, "
            f"contact log) vs {bare_rate:,.0f}/s bare httpx (8 threads): "
            f"{sms_rate / bare_rate:.2f}x of bare; target {SMS_TARGET}/s {verdict}"
        )
        sent, seconds = _dispatch("email")
        ours.send("count")
        _, mailed = ours.recv()
        assert mailed == sent == args.emails, (mailed, sent)
        bare = _bare_smtp(port, args.emails)
        email_rate, bare_rate = sent / seconds, args.emails / bare
        verdict = "ok" if email_rate >= EMAIL_TARGET else "BELOW TARGET"
        print(
            f"email over SMTP: {email_rate:,.0f}/s through the dispatcher vs {bare_rate:,.0f}/s "
            f"bare smtplib (one connection): {email_rate / bare_rate:.2f}x of bare; "
            f"target {EMAIL_TARGET}/s {verdict}"
        )
    finally:
        ours.send("stop")
        servers.join(10)
    if args.campaign:
        _campaign(args.campaign, args.before)


if __name__ == "__main__":
    main()
