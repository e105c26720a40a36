"""Compliance facts about debtors and debts: read for the gate, recorded with an audit trail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.compliance.facts import repository
from recoup.compliance.facts.rules import (
    InconvenientPlace,
    StatedPreferenceError,
    StatedWindow,
    account_fact_problems,
    facts_read_by,
    parse_places,
    parse_stated_window,
)
from recoup.compliance.facts.zones import (
    ZonedFrom,
    ZoneSource,
    address_zones,
    debtor_zones,
    phone_zones_for,
)
from recoup.compliance.gate.rules import (
    DailyWindow,
    DebtorFacts,
    batch_debtor_facts,
)
from recoup.compliance.rulepack import load_pack
from recoup.contact import service as contact_service
from recoup.contact.rules import ChannelStanding
from recoup.enums import FINISHED_STATUSES, ContactKind
from recoup.institutions import repository as institutions_repository
from recoup.kit import clock
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.models.account import Account
from recoup.models.compliance import (
    ContactWindow,
    WindowKind,
)
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.institution import Institution


def _window(row: ContactWindow) -> DailyWindow:
    return DailyWindow(
        start=time(row.start_minute // 60, row.start_minute % 60),
        end=time(row.end_minute // 60 % 24, row.end_minute % 60),
        weekdays=None if row.weekdays is None else frozenset(row.weekdays),
    )


def _validation_facts(
    session: Session, *, debtor: Debtor, account: Account | None
) -> tuple[date | None, date | None]:
    """Return (initial communication, validation notice sent) for the gate.

    Reg F counts the validation period per debt: an attempt naming an account uses that
    account's dates; otherwise the strictest open account decides — the earliest initial
    communication still waiting for its notice.
    """
    if account is not None:
        return account.initial_communication_on, account.validation_notice_sent_on
    waiting = session.execute(
        select(func.min(Account.initial_communication_on)).where(
            Account.institution_id == debtor.institution_id,
            Account.debtor_id == debtor.id,
            Account.status.not_in(sorted(FINISHED_STATUSES)),
            Account.initial_communication_on.is_not(None),
            Account.validation_notice_sent_on.is_(None),
        )
    ).scalar_one_or_none()
    return waiting, None


def debtor_zone_sources(session: Session, *, debtor: Debtor, region: str) -> tuple[ZonedFrom, ...]:
    """Return every zone the debtor's data places them in, each with where it came from."""
    phones = repository.own_phones(
        session, institution_id=debtor.institution_id, debtor_id=debtor.id
    )
    return _zone_sources(debtor, phones, region, {})


def _zone_sources(
    debtor: Debtor,
    own_phones: Sequence[ContactPoint],
    region: str,
    parsed: dict[str, tuple[str, ...]],
) -> tuple[ZonedFrom, ...]:
    phones: list[ZonedFrom] = []
    for phone in own_phones:
        if phone.timezone and phone.timezone_source != ZoneSource.PHONE:
            phones.append(ZonedFrom(phone.timezone, ZoneSource.CONTACT_POINT))
        if phone.value not in parsed:
            parsed[phone.value] = phone_zones_for(phone.value, region)
        phones += [ZonedFrom(zone, ZoneSource.PHONE) for zone in parsed[phone.value]]
    return debtor_zones(
        zone=debtor.timezone,
        source=ZoneSource(debtor.timezone_source or ZoneSource.COLUMN),
        address=address_zones(debtor.province, debtor.city),
        phones=phones,
    )


def contact_point_zone(contact_point: ContactPoint | None, region: str) -> str | None:
    """Return the zone of the number or address contacted: given, else its phone area's."""
    if contact_point is None:
        return None
    if contact_point.timezone:
        return contact_point.timezone
    if contact_point.kind in (ContactKind.mobile, ContactKind.landline):
        inferred = phone_zones_for(contact_point.value, region)
        return inferred[0] if inferred else None
    return None


def debtor_facts(
    session: Session,
    *,
    debtor: Debtor,
    contact_point: ContactPoint | None,
    account: Account | None = None,
    validation: bool = True,
    zones: tuple[ZonedFrom, ...] = (),
) -> DebtorFacts:
    windows = repository.contact_windows(
        session, institution_id=debtor.institution_id, debtor_id=debtor.id
    )
    # Consent and opt-outs are per contact point and channel (the contact domain's rows).
    standing = (
        contact_service.standing(session, contact_point=contact_point)
        if contact_point is not None
        else ChannelStanding()
    )
    # Packs without US-VAL never read the validation dates: skip their query.
    validation_dates = (
        _validation_facts(session, debtor=debtor, account=account) if validation else (None, None)
    )
    return _facts(debtor, windows, standing, validation_dates, zones)


@dataclass(frozen=True, slots=True)
class FactsFor:
    """The facts of one (debtor, contact point) the gate is asked about, with their zones."""

    facts: DebtorFacts
    zones: tuple[ZonedFrom, ...]
    contact_point_zone: str | None


def facts_for(
    session: Session,
    *,
    institution_id: int,
    targets: Sequence[tuple[Debtor, ContactPoint, Account | None]],
    region: str,
    validation: bool,
) -> list[FactsFor]:
    """Return ``debtor_facts`` for many (debtor, contact point, account) at once: one query per
    kind of fact for the whole batch instead of several per debtor."""
    debtor_ids = {debtor.id for debtor, _, _ in targets}
    phones = repository.own_phones_for(
        session, institution_id=institution_id, debtor_ids=debtor_ids
    )
    windows: dict[int, list[ContactWindow]] = {}
    for window in repository.windows_of_debtors(
        session, institution_id=institution_id, debtor_ids=sorted(debtor_ids)
    ):
        windows.setdefault(window.debtor_id, []).append(window)
    standings = contact_service.standings(
        session,
        institution_id=institution_id,
        contact_point_ids={point.id for _, point, _ in targets},
    )
    parsed: dict[str, tuple[str, ...]] = {}
    zones_of: dict[int, tuple[ZonedFrom, ...]] = {}
    found: list[FactsFor] = []
    for debtor, point, account in targets:
        zones = zones_of.get(debtor.id)
        if zones is None:
            zones = _zone_sources(debtor, phones.get(debtor.id, ()), region, parsed)
            zones_of[debtor.id] = zones
        validation_dates = (
            _validation_facts(session, debtor=debtor, account=account)
            if validation
            else (None, None)
        )
        facts = _facts(
            debtor,
            windows.get(debtor.id, ()),
            standings.get(point.id, ChannelStanding()),
            validation_dates,
            zones,
        )
        if point.timezone:
            point_zone: str | None = point.timezone
        elif point.kind in (ContactKind.mobile, ContactKind.landline):
            if point.value not in parsed:
                parsed[point.value] = phone_zones_for(point.value, region)
            point_zone = parsed[point.value][0] if parsed[point.value] else None
        else:
            point_zone = None
        found.append(FactsFor(facts, zones, point_zone))
    return found


def _facts(
    debtor: Debtor,
    windows: Sequence[ContactWindow],
    standing: ChannelStanding,
    validation_dates: tuple[date | None, date | None],
    zones: tuple[ZonedFrom, ...],
) -> DebtorFacts:
    initial_communication_on, validation_notice_sent_on = validation_dates
    return DebtorFacts(
        debtor_id=str(debtor.id),
        timezones=tuple(each.zone for each in zones) or (debtor.timezone,),
        agreed_windows=tuple(_window(w) for w in windows if w.kind == WindowKind.agreed),
        inconvenient_windows=tuple(
            _window(w) for w in windows if w.kind == WindowKind.inconvenient
        ),
        inconvenient_places=_places(debtor),
        cease_contact=debtor.cease_contact,
        opted_out_channels=standing.opted_out,
        attorney_represented=debtor.attorney_represented,
        dispute_open=debtor.disputed,
        deceased=debtor.deceased,
        bankruptcy=debtor.bankrupt,
        automated_consent=standing.consented,
        work_contact_forbidden=debtor.work_contact_forbidden,
        initial_communication_on=initial_communication_on,
        validation_notice_sent_on=validation_notice_sent_on,
    )


def _places(debtor: Debtor) -> frozenset[InconvenientPlace]:
    return frozenset(InconvenientPlace(place) for place in debtor.inconvenient_places or ())


def find_debtor(session: Session, *, institution_id: int, reference: str) -> Debtor:
    """Return the institution's debtor named by an external id (D0001) or an internal id."""
    reference = reference.strip()
    found = repository.debtors_by_reference(
        session, institution_id=institution_id, reference=reference
    )
    if not found:
        raise NotFound(f"no debtor {reference}; give its external id (e.g. D0001) or its id")
    if len(found) > 1:
        by_external = [debtor for debtor in found if debtor.external_id == reference]
        raise ValidationFailed(
            f"{reference!r} is the id of one debtor and the external id of another "
            f"(id {by_external[0].id}); give the other debtor's external id instead"
        )
    return found[0]


# Compliance facts people record (cease contact, attorney, dispute, validation dates …)

DEBTOR_FACT_FIELDS: tuple[str, ...] = (
    "cease_contact",
    "attorney_represented",
    "disputed",
    "deceased",
    "bankrupt",
    "work_contact_forbidden",
)
ACCOUNT_FACT_FIELDS: tuple[str, ...] = (
    "initial_communication_on",
    "validation_notice_sent_on",
    "time_barred_on",
)


def fact_fields_for(institution: Institution) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the debtor and account facts the institution's rule pack reads (for its forms)."""
    pack = load_pack(str(institution.jurisdiction))
    return (
        facts_read_by(pack, DEBTOR_FACT_FIELDS),
        facts_read_by(pack, ACCOUNT_FACT_FIELDS),
    )


def _fact_problem(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message}])


def institution_today(
    session: Session, *, institution_id: int, now: datetime | None = None
) -> date:
    """Return today's date in the institution's time zone."""
    institution = institutions_repository.require_by_id(session, institution_id)
    return clock.local_today(institution.timezone, now=now)


def _audit_facts(
    session: Session,
    *,
    actor: str,
    object_type: str,
    object_id: int,
    institution_id: int,
    changes: Mapping[str, tuple[object, object]],
) -> None:
    audit.record(
        session,
        actor=actor,
        action="compliance.facts_update",
        object_type=object_type,
        object_id=object_id,
        institution_id=institution_id,
        details={
            "changes": {
                field: {"old": _plain(old), "new": _plain(new)}
                for field, (old, new) in changes.items()
            }
        },
    )


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def update_debtor_facts(
    session: Session, *, debtor: Debtor, changes: Mapping[str, bool], actor: str
) -> dict[str, tuple[object, object]]:
    """Change the given debtor-level facts (only those given) and audit old → new."""
    for field, value in changes.items():
        if field not in DEBTOR_FACT_FIELDS:
            raise _fact_problem(field, f"not a debtor fact; use {', '.join(DEBTOR_FACT_FIELDS)}")
        if not isinstance(value, bool):
            raise _fact_problem(field, "must be true or false")
    return _apply_facts(session, debtor, changes, object_type="debtor", actor=actor)


def update_account_facts(
    session: Session,
    *,
    account: Account,
    changes: Mapping[str, date | None],
    actor: str,
    today: date | None = None,
) -> dict[str, tuple[object, object]]:
    """Change the given per-debt validation facts (None clears one) and audit old → new.

    Dates of a communication or notice cannot be in the future, and the validation notice
    cannot predate the initial communication (judged on the account after the change).
    """
    today = today or institution_today(session, institution_id=account.institution_id)
    for field, value in changes.items():
        if field not in ACCOUNT_FACT_FIELDS:
            raise _fact_problem(field, f"not an account fact; use {', '.join(ACCOUNT_FACT_FIELDS)}")
        if value is not None and not isinstance(value, date):
            raise _fact_problem(field, "must be a date like 2025-03-31, or null to clear it")
    stored = {field: getattr(account, field) for field in ACCOUNT_FACT_FIELDS}
    for field, message in account_fact_problems(changes, stored, today=today)[:1]:
        raise _fact_problem(field, message)
    return _apply_facts(session, account, changes, object_type="account", actor=actor)


def _apply_facts(
    session: Session,
    target: Debtor | Account,
    changes: Mapping[str, object],
    *,
    object_type: str,
    actor: str,
) -> dict[str, tuple[object, object]]:
    """Set the checked facts that differ from the stored ones and audit old → new once."""
    changed: dict[str, tuple[object, object]] = {}
    for field, value in changes.items():
        old = getattr(target, field)
        if old != value:
            setattr(target, field, value)
            changed[field] = (old, value)
    if changed:
        session.flush()
        _audit_facts(
            session,
            actor=actor,
            object_type=object_type,
            object_id=target.id,
            institution_id=target.institution_id,
            changes=changed,
        )
    return changed


def institution_account(session: Session, institution_id: int, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None or account.institution_id != institution_id:
        raise NotFound(f"no account {account_id}")
    return account


# Consumer-stated inconvenient times and places (US-INCONV)


@dataclass(frozen=True, slots=True)
class Inconvenient:
    """The times and places a debtor said are inconvenient for contact."""

    times: tuple[StatedWindow, ...]
    places: frozenset[InconvenientPlace]

    @property
    def time_labels(self) -> list[str]:
        """Return the times as people write them."""
        return [window.label for window in self.times]

    @property
    def place_names(self) -> list[str]:
        """Return the places, sorted."""
        return sorted(str(place) for place in self.places)


def inconvenient_for(session: Session, *, debtor: Debtor) -> Inconvenient:
    """Return what the debtor said is inconvenient."""
    rows = repository.contact_windows(
        session, institution_id=debtor.institution_id, debtor_id=debtor.id
    )
    return Inconvenient(
        times=tuple(
            StatedWindow(
                row.start_minute,
                row.end_minute,
                None if row.weekdays is None else tuple(row.weekdays),
            )
            for row in rows
            if row.kind == WindowKind.inconvenient
        ),
        places=_places(debtor),
    )


def read_inconvenient(
    *, times: Sequence[str] | None, places: Sequence[str] | None
) -> tuple[tuple[StatedWindow, ...] | None, frozenset[InconvenientPlace] | None]:
    """Read stated times (``22:00-08:00``, ``09:00-17:00 mon-fri``) and places, or refuse."""
    windows: tuple[StatedWindow, ...] | None = None
    if times is not None:
        try:
            windows = tuple(parse_stated_window(text) for text in times if text.strip())
        except StatedPreferenceError as error:
            raise _fact_problem("inconvenient_times", str(error)) from error
    read_places: frozenset[InconvenientPlace] | None = None
    if places is not None:
        try:
            read_places = parse_places(places)
        except StatedPreferenceError as error:
            raise _fact_problem("inconvenient_places", str(error)) from error
    return windows, read_places


def record_inconvenient(
    session: Session,
    *,
    debtor: Debtor,
    actor: str,
    times: Sequence[StatedWindow] | None = None,
    places: frozenset[InconvenientPlace] | None = None,
    note: str | None = None,
) -> Inconvenient:
    """Replace the debtor's stated inconvenient times and/or places (None keeps them); audit."""
    before = inconvenient_for(session, debtor=debtor)
    if times is not None and tuple(times) != before.times:
        repository.delete_windows(
            session,
            institution_id=debtor.institution_id,
            debtor_id=debtor.id,
            kind=WindowKind.inconvenient,
        )
        session.add_all(
            ContactWindow(
                institution_id=debtor.institution_id,
                debtor_id=debtor.id,
                kind=WindowKind.inconvenient,
                start_minute=window.start_minute,
                end_minute=window.end_minute,
                weekdays=None if window.weekdays is None else list(window.weekdays),
                note=note,
            )
            for window in times
        )
    if places is not None and places != before.places:
        debtor.inconvenient_places = sorted(str(place) for place in places) or None
    session.flush()
    after = inconvenient_for(session, debtor=debtor)
    changes: dict[str, tuple[object, object]] = {}
    if after.times != before.times:
        changes["inconvenient_times"] = (before.time_labels, after.time_labels)
    if after.places != before.places:
        changes["inconvenient_places"] = (before.place_names, after.place_names)
    if changes:
        _audit_facts(
            session,
            actor=actor,
            object_type="debtor",
            object_id=debtor.id,
            institution_id=debtor.institution_id,
            changes=changes,
        )
    return after


# Debtors read per query when deciding many contacts (well below every driver's bind limit).
FACTS_CHUNK = 5_000
# Most debtors have no inconvenient place: they share one empty set.
NO_PLACES: frozenset[InconvenientPlace] = frozenset()


def debtors_facts(
    session: Session,
    *,
    institution_id: int,
    debtor_ids: Sequence[int],
    account_of: Mapping[int, int | None] | None = None,
    validation: bool = False,
) -> dict[str, DebtorFacts]:
    """Return the gate's facts of many debtors, read set-based (for the daily cycle).

    Zones come from the stored zone, the address and the zones stored on the debtor's own
    phones; a number's area is not re-read from the (encrypted) number itself, so the check
    made when the contact happens (``gate.service.check_contact``) may still find a zone more.
    Consent and opt-outs are per contact point: a contact planned to the debtor names none.
    ``account_of`` names the account each debtor's contact is about (its validation dates).
    """
    facts: dict[str, DebtorFacts] = {}
    # Most debtors share their zone, its source and their address's province and city with
    # many others: their zones are worked out once per such combination.
    shared: dict[tuple[Any, ...], tuple[str, ...]] = {}
    ids = sorted(set(debtor_ids))
    for start in range(0, len(ids), FACTS_CHUNK):
        chunk = ids[start : start + FACTS_CHUNK]
        phones: dict[int, list[ZonedFrom]] = {}
        for debtor_id, zone, source in repository.phone_zone_rows(
            session, institution_id=institution_id, debtor_ids=chunk
        ):
            kind = ZoneSource.PHONE if source == ZoneSource.PHONE else ZoneSource.CONTACT_POINT
            phones.setdefault(debtor_id, []).append(ZonedFrom(zone, kind))
        windows: dict[int, list[ContactWindow]] = {}
        for window in repository.windows_of_debtors(
            session, institution_id=institution_id, debtor_ids=chunk
        ):
            windows.setdefault(window.debtor_id, []).append(window)
        dates: dict[int, tuple[date | None, date | None]] = {}
        if validation and account_of:
            accounts = [account_of[d] for d in chunk if account_of.get(d) is not None]
            dates = {
                account_id: (initial, sent)
                for account_id, initial, sent in repository.validation_rows(
                    session,
                    institution_id=institution_id,
                    account_ids=[a for a in accounts if a is not None],
                )
            }
        for row in repository.debtor_fact_rows(
            session, institution_id=institution_id, debtor_ids=chunk
        ):
            (debtor_id, zone, zone_source, province, city, cease, deceased, bankrupt) = row[:8]
            disputed, attorney, work_forbidden, places = row[8:]
            own_phones = tuple(phones.get(debtor_id, ()))
            key = (zone, zone_source, province, city, own_phones)
            if key not in shared:
                shared[key] = tuple(
                    each.zone
                    for each in debtor_zones(
                        zone=zone,
                        source=ZoneSource(zone_source or ZoneSource.COLUMN),
                        address=address_zones(province, city),
                        phones=own_phones,
                    )
                ) or (zone,)
            own = windows.get(debtor_id)
            account_id = account_of.get(debtor_id) if account_of else None
            initial, sent = dates.get(account_id, (None, None)) if account_id else (None, None)
            debtor = str(debtor_id)
            facts[debtor] = batch_debtor_facts(
                debtor_id=debtor,
                timezones=shared[key],
                agreed_windows=(
                    tuple(_window(w) for w in own if w.kind == WindowKind.agreed) if own else ()
                ),
                inconvenient_windows=(
                    tuple(_window(w) for w in own if w.kind == WindowKind.inconvenient)
                    if own
                    else ()
                ),
                inconvenient_places=(
                    frozenset(InconvenientPlace(p) for p in places) if places else NO_PLACES
                ),
                cease_contact=cease,
                attorney_represented=attorney,
                dispute_open=disputed,
                deceased=deceased,
                bankruptcy=bankrupt,
                work_contact_forbidden=work_forbidden,
                initial_communication_on=initial,
                validation_notice_sent_on=sent,
            )
    return facts
