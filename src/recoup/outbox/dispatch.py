"""The dispatcher: send due messages exactly once, committing around every provider call.

This is a transaction boundary, like the imports' chunk loop: it commits the session it is
given at three points of each batch, because the sent-marker protocol needs them.

1. Claim due messages, ask the gate again (``service.prepare``) and **commit** the *sending*
   marks and their send tokens, before any provider is called.
2. Call the providers (each adapter passes the message's idempotency key where the provider
   takes one), at each provider's rate limit.
3. Record what they did (``service.record_results``) and **commit**.

A dispatcher killed between 2 and 3 leaves messages *sending*. The next run reconciles those
older than ``reconcile_after`` with the provider (``adapter.lookup``) instead of sending them
again. ``RECOUP_OUTBOX_FAULT=kill-after-send`` kills the process right after a provider
accepted a message (the tests' way to prove it).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.orm import Session

from recoup.contact.channels import Channel
from recoup.institutions import repository as institutions_repository
from recoup.institutions.settings import settings_of
from recoup.kit.clock import utcnow
from recoup.outbox import repository, service
from recoup.outbox.adapters.base import Adapter, DeliveryUnknown
from recoup.outbox.adapters.factory import adapter_for
from recoup.outbox.rules import Permanent, TokenBucket, Transient

FAULT_ENV = "RECOUP_OUTBOX_FAULT"
RECONCILE_AFTER = timedelta(minutes=2)
BATCH = 500
# Concurrent provider calls per adapter (HTTP adapters share a thread-safe pool; SMTP and the
# local sink send one at a time).
HTTP_CONCURRENCY = 8

AdapterFactory = Callable[[Channel, int, str], Adapter]


@dataclass(slots=True)
class DispatchReport:
    """What one dispatcher run did."""

    counts: dict[str, int] = field(default_factory=dict)
    held: int = 0
    reconciled: int = 0
    seconds: float = 0.0

    def add(self, counts: dict[str, int]) -> None:
        """Add a batch's counts by status."""
        for status, count in counts.items():
            self.counts[status] = self.counts.get(status, 0) + count

    @property
    def sent(self) -> int:
        """Messages a provider accepted in this run."""
        return self.counts.get("sent", 0) + self.counts.get("delivered", 0)


class Dispatcher:
    """Adapters and rate limits of one dispatcher process, reused across batches."""

    def __init__(self, *, adapters: AdapterFactory | None = None) -> None:
        self._factory = adapters
        self._adapters: dict[tuple[int, Channel], Adapter] = {}
        self._buckets: dict[tuple[int, Channel], TokenBucket] = {}
        self._pool = ThreadPoolExecutor(max_workers=HTTP_CONCURRENCY)

    def adapter(self, session: Session, institution_id: int, channel: Channel) -> Adapter:
        """Return (and keep) the adapter of an institution's channel."""
        key = (institution_id, channel)
        found = self._adapters.get(key)
        if found is None:
            institution = institutions_repository.require_by_id(session, institution_id)
            settings = settings_of(institution).channels
            if self._factory is not None:
                found = self._factory(channel, institution_id, institution.code)
            else:
                found = adapter_for(channel, settings, institution_code=institution.code)
            rate = settings.sms_per_second if channel is Channel.SMS else settings.email_per_second
            self._buckets[key] = TokenBucket(rate=rate, burst=max(1.0, rate))
            self._adapters[key] = found
        return found

    def ready(self, session: Session, outgoing: list[service.Outgoing]) -> None:
        """Make the adapters of a batch (before the commit: sending touches no database)."""
        for each in outgoing:
            self.adapter(session, each.institution_id, each.channel)

    def send(self, outgoing: list[service.Outgoing]) -> list[service.Result]:
        """Hand each message to its adapter at the provider's rate; never raises for one."""
        groups: dict[tuple[int, Channel], list[service.Outgoing]] = {}
        for each in outgoing:
            groups.setdefault((each.institution_id, each.channel), []).append(each)
        results: list[service.Result] = []
        for key, group in groups.items():
            adapter = self._adapters[key]
            bucket = self._buckets[key]
            concurrent = getattr(adapter, "client", None) is not None
            if concurrent:
                results.extend(self._pool.map(partial(self._one, adapter, bucket), group))
            else:
                results.extend(self._one(adapter, bucket, item) for item in group)
        return results

    def _one(self, adapter: Adapter, bucket: TokenBucket, item: service.Outgoing) -> service.Result:
        wait = bucket.take(time.monotonic())
        if wait > 0:
            time.sleep(wait)
        try:
            accepted = adapter.send(item.message)
        except (Transient, Permanent) as error:
            return service.Result(item, error=error)
        except Exception as error:  # an adapter's bug must not lose the batch's other results
            return service.Result(item, error=Transient(f"adapter error: {type(error).__name__}"))
        if os.environ.get(FAULT_ENV) == "kill-after-send":
            os.kill(os.getpid(), signal.SIGKILL)
        return service.Result(item, accepted=accepted, provider=adapter.name)

    def close(self) -> None:
        """Close every adapter and the thread pool."""
        for adapter in self._adapters.values():
            adapter.close()
        self._adapters.clear()
        self._pool.shutdown(wait=True)


def reconcile(
    session: Session,
    dispatcher: Dispatcher,
    *,
    now: datetime,
    reconcile_after: timedelta,
    institution_id: int | None = None,
) -> int:
    """Settle messages left *sending* by a dispatcher that died; commit; return how many."""
    stale = repository.stale_sending(
        session, before=now - reconcile_after, limit=BATCH, institution_id=institution_id
    )
    for message in stale:
        outgoing = service.outgoing_for_reconcile(session, message=message)
        adapter = dispatcher.adapter(session, message.institution_id, outgoing.channel)
        try:
            found, unknown = adapter.lookup(outgoing.message), None
        except DeliveryUnknown as error:
            found, unknown = None, str(error)
        service.reconciled(
            session, message=message, found=found, unknown=unknown, now=now, provider=adapter.name
        )
    session.commit()
    return len(stale)


def dispatch(
    session: Session,
    *,
    now: datetime | None = None,
    institution_id: int | None = None,
    limit: int | None = None,
    batch: int = BATCH,
    reconcile_after: timedelta = RECONCILE_AFTER,
    dispatcher: Dispatcher | None = None,
) -> DispatchReport:
    """Send every due message (up to ``limit``), in batches; commits as the module explains."""
    started = time.perf_counter()
    owned = dispatcher is None
    dispatcher = dispatcher or Dispatcher()
    report = DispatchReport()
    try:
        moment = now or utcnow()
        report.reconciled = reconcile(
            session,
            dispatcher,
            now=moment,
            reconcile_after=reconcile_after,
            institution_id=institution_id,
        )
        done = 0
        while limit is None or done < limit:
            moment = now or utcnow()
            size = batch if limit is None else min(batch, limit - done)
            due = repository.claim_due(
                session, now=moment, limit=size, institution_id=institution_id
            )
            if not due:
                break
            max_attempts = {
                institution_id: settings_of(
                    institutions_repository.require_by_id(session, institution_id)
                ).channels.max_attempts
                for institution_id in {each.institution_id for each in due}
            }
            outgoing = service.prepare(session, messages=due, now=moment)
            dispatcher.ready(session, outgoing)
            session.commit()
            done += len(due)
            report.held += len(due) - len(outgoing)
            results = dispatcher.send(outgoing)
            report.add(
                service.record_results(
                    session, results=results, now=moment, max_attempts=max_attempts
                )
            )
            session.commit()
    finally:
        if owned:
            dispatcher.close()
    report.seconds = time.perf_counter() - started
    return report
