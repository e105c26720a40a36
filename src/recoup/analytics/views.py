"""Dashboards: the home page (the manager's view), agents and teams, an agent's day, regions,
compliance monitoring and data quality; every chart also as a table, every table exportable.

Each dashboard is built once as *tables* (``Table``: columns with a kind, rows of raw values);
the page formats them for the reader, and the exports (``…/export.csv``, ``…/export.xlsx``)
write the same rows as numbers, with who exported them and when in the file's first rows.
Exports need the dashboard's own permission and ``dashboards:export``, and are audited.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from recoup.analytics import service as kpis
from recoup.analytics.daily import repository as daily_repository
from recoup.analytics.daily import service as daily
from recoup.analytics.daily.rules import Span
from recoup.audit import service as audit
from recoup.compliance.templates.review import default_reviewer
from recoup.deps import SessionDep
from recoup.enums import Product
from recoup.identity.dependencies import require_page
from recoup.identity.scoping import get_scoped
from recoup.institutions import repository as institutions
from recoup.kit import clock
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.money import minor_digits
from recoup.kit.pagination import PageRequest
from recoup.kit.tabular import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, Sheet, to_csv, to_xlsx
from recoup.models.identity import User
from recoup.models.institution import Institution
from recoup.portfolio import repository as portfolio
from recoup.web import localization as i18n
from recoup.web.templating import Viewer, render, viewer_with

router = APIRouter(include_in_schema=False)

ReadHome = Annotated[Viewer, viewer_with("dashboard:read")]
ReadKpis = Annotated[Viewer, viewer_with("kpis:read")]
ReadCompliance = Annotated[Viewer, viewer_with("compliance:read")]
ReadQuality = Annotated[Viewer, viewer_with("dq:read")]
Export = Depends(require_page("dashboards:export"))

# Filters arrive from forms, where "any" is an empty value: read as text, checked here.
FromDay = Annotated[str | None, Query(alias="from", max_length=10)]
ToDay = Annotated[str | None, Query(alias="to", max_length=10)]
ProductFilter = Annotated[str | None, Query(max_length=24)]
TeamFilter = Annotated[str | None, Query(max_length=19, pattern=r"^\d*$")]
AgentFilter = Annotated[str | None, Query(max_length=19, pattern=r"^\d*$")]
DayFilter = Annotated[str | None, Query(max_length=10)]


def _day_of(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"{field}: {value!r} is not a date; write it as YYYY-MM-DD",
            errors=[{"field": field, "message": "write the date as YYYY-MM-DD"}],
        ) from None


def _product_of(value: str | None) -> Product | None:
    if not value:
        return None
    try:
        return Product(value)
    except ValueError:
        known = ", ".join(str(product) for product in Product)
        raise ValidationFailed(
            f"product: unknown product {value!r}; use one of {known}",
            errors=[{"field": "product", "message": f"use one of {known}"}],
        ) from None


def _id_of(value: str | None) -> int | None:
    return int(value) if value and 0 < int(value) < 2**63 else None


Level = Literal["province", "city"]

# --- Tables: what every dashboard shows and exports. ---------------------------------------------

Kind = Literal["text", "code", "count", "money", "percent", "index", "number", "date", "moment"]


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its catalog label and the kind of its values (how they are shown)."""

    label: str
    kind: Kind = "text"


@dataclass(slots=True)
class Table:
    """A dashboard table: a key (for exports), a title, columns and rows of raw values."""

    key: str
    title: str
    columns: list[Column]
    rows: list[list[Any]]
    note: str = ""
    chart: dict[str, Any] | None = None
    empty: str = "dashboards.empty"


@dataclass(slots=True)
class Board:
    """A built dashboard: its tables and what the page shows around them."""

    name: str
    span: Span | None
    tables: list[Table]
    extra: dict[str, Any] = field(default_factory=dict)

    def table(self, key: str) -> Table:
        """Return the table ``key``; an unknown key is ``NotFound``."""
        for table in self.tables:
            if table.key == key:
                return table
        raise NotFound(f"no table {key!r} on this dashboard: use {', '.join(self.keys)}")

    @property
    def keys(self) -> list[str]:
        """The keys of the board's tables, in page order."""
        return [table.key for table in self.tables]


def shown(value: Any, kind: Kind, viewer: Viewer) -> str:
    """Return a value as the page shows it in the viewer's language (``—``: no data)."""
    if value is None:
        return "—"
    if kind == "money":
        return i18n.money(int(value), viewer.currency, viewer.locale)
    if kind == "percent":
        return f"{float(value) * 100:.1f}%"
    if kind == "index":
        return f"{float(value):.2f}"
    if kind == "number":
        return f"{float(value):,.1f}"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "date":
        return i18n.day(value, viewer.locale)
    if kind == "moment":
        return i18n.moment(value, viewer.locale, viewer.timezone)
    return str(value)


def compact_money(minor: int | None, viewer: Viewer) -> str:
    """Return an amount short enough for a headline card: ¥2,917.0万 / CN¥29.17M."""
    if minor is None:
        return "—"
    full = i18n.money(int(minor), viewer.currency, viewer.locale)
    zero = i18n.money(0, viewer.currency, viewer.locale)
    symbol = zero[: next((i for i, c in enumerate(zero) if c.isdigit()), 0)]
    major = abs(int(minor)) / 10 ** minor_digits(viewer.currency)
    sign = "-" if minor < 0 else ""
    if viewer.locale.startswith("zh"):
        if major >= 1e8:
            return f"{sign}{symbol}{major / 1e8:,.2f}亿"
        if major >= 1e4:
            return f"{sign}{symbol}{major / 1e4:,.1f}万"
        return full
    if major >= 1e6:
        return f"{sign}{symbol}{major / 1e6:,.2f}M"
    if major >= 1e4:
        return f"{sign}{symbol}{major / 1e3:,.1f}K"
    return full


def exported(value: Any, kind: Kind, digits: int) -> Any:
    """Return a value as an export writes it: money in major units, shares in percent."""
    if value is None:
        return None
    if kind == "money":
        return Decimal(int(value)).scaleb(-digits)
    if kind == "percent":
        return round(float(value) * 100, 2)
    if kind in {"index", "number"}:
        return round(float(value), 3)
    if kind == "moment" and isinstance(value, datetime):
        return value.astimezone(clock.zone("UTC")).replace(microsecond=0)
    return value


def _column_label(column: Column, viewer: Viewer) -> str:
    label = viewer.text(column.label)
    if column.kind == "money":
        return f"{label} ({viewer.currency})"
    if column.kind == "percent":
        return f"{label} (%)"
    return label


# --- Filters and the period. ---------------------------------------------------------------------


def _institution(session: Session, viewer: Viewer) -> Institution:
    assert viewer.principal is not None
    return institutions.require_callers(session, viewer.principal.institution_id, what="dashboards")


def _span(
    session: Session, institution: Institution, start_text: str | None, end_text: str | None
) -> Span:
    """The period asked for; by default the month to the last day the aggregates cover."""
    start, end = _day_of(start_text, "from"), _day_of(end_text, "to")
    today = clock.local_today(institution.timezone)
    refreshed = daily_repository.refresh_state(session, institution_id=institution.id)
    last = end or (min(today, refreshed.refreshed_through) if refreshed else today)
    first = start or last.replace(day=1)
    if first > last:
        first, last = last, first
    return Span(first, last)


def _filters(span: Span, product: Product | None, team: int | None) -> dict[str, Any]:
    return {
        "from": span.first.isoformat(),
        "to": span.last.isoformat(),
        "product": str(product) if product else "",
        "team_lead_id": team or "",
    }


def _team_leads(session: Session, institution: Institution) -> list[tuple[int, str]]:
    from sqlalchemy import select

    rows = session.execute(
        select(User.id, User.username, User.display_name)
        .where(User.institution_id == institution.id, User.role == "team_lead")
        .order_by(User.username)
    )
    return [(int(user), str(display or name)) for user, name, display in rows]


def _code(viewer: Viewer, prefix: str, value: str | None) -> str:
    if value is None:
        return viewer.text("dashboards.unknown")
    key = f"{prefix}.{value}"
    text = viewer.text(key)
    return value if text == key else text


# --- The home page. ------------------------------------------------------------------------------


def _counts(session: Session, viewer: Viewer) -> dict[str, Any] | None:
    """The home page of a role without KPIs: counts of the debtors and accounts it may see."""
    if not (viewer.allows("accounts:read") and viewer.allows("debtors:read")):
        return None
    assert viewer.principal is not None
    principal, first = viewer.principal, PageRequest(1, 1)
    # Held accounts only (as the manager's day-end snapshot counts them), live, in one query.
    by_bucket = portfolio.held_accounts_by_bucket(session, principal=principal)
    return {
        "debtors": portfolio.debtors_page(session, principal=principal, page=first).total,
        "accounts": sum(by_bucket.values()),
        "delinquent_accounts": sum(n for bucket, n in by_bucket.items() if bucket != "M0"),
        "by_bucket": by_bucket,
        "scope": "own" if principal.is_agent else "institution",
    }


def _alert_values(values: Mapping[str, str], viewer: Viewer) -> dict[str, str]:
    """An alert's values as the page shows them: its day (ISO in the API) in the reader's words."""
    if "day" not in values:
        return dict(values)
    return {**values, "day": shown(date.fromisoformat(values["day"]), "date", viewer)}


def home_board(
    session: Session,
    viewer: Viewer,
    *,
    start: str | None,
    end: str | None,
    product_code: str | None,
    team_code: str | None,
) -> Board:
    """Build the manager's home: headlines, waterfall, roll rates, trend, today's work, alerts."""
    product, team = _product_of(product_code), _id_of(team_code)
    institution = _institution(session, viewer)
    assert viewer.principal is not None
    span = _span(session, institution, start, end)
    home = daily.manager_home(
        session,
        principal=viewer.principal,
        span=span,
        product=str(product) if product else None,
        team_lead_id=team,
        today=clock.local_today(institution.timezone),
    )
    text = viewer.text
    headlines = Table(
        "headlines",
        "dashboards.home.headlines",
        [
            Column("dashboards.col.figure"),
            Column("dashboards.col.current", "text"),
            Column("dashboards.col.previous", "text"),
            Column("dashboards.col.change", "text"),
        ],
        [],
    )
    cards = []
    for item in home.headlines:
        kind: Kind = {"money": "money", "percent": "percent", "count": "count"}.get(
            item.unit, "number"
        )  # type: ignore[assignment]
        change = item.change
        if change is None:
            change_text = "—"
        elif item.unit == "percent":
            change_text = text("dashboards.points", points=f"{change * 100:+.1f}")
        elif item.unit == "money":
            sign = "+" if change >= 0 else "−"
            change_text = sign + compact_money(int(abs(change)), viewer)
        else:
            change_text = f"{change:+,.0f}"
        headlines.rows.append(
            [
                text(f"dashboards.headline.{item.key}"),
                shown(item.current, kind, viewer),
                shown(item.previous, kind, viewer),
                change_text,
            ]
        )
        cards.append(
            {
                "key": item.key,
                "label": text(f"dashboards.headline.{item.key}"),
                "hint": text(f"dashboards.headline.{item.key}.hint"),
                "value": compact_money(None if item.current is None else int(item.current), viewer)
                if kind == "money"
                else shown(item.current, kind, viewer),
                "exact": shown(item.current, kind, viewer),
                "previous": compact_money(
                    None if item.previous is None else int(item.previous), viewer
                )
                if kind == "money"
                else shown(item.previous, kind, viewer),
                "change": change_text,
                "good": item.good,
            }
        )
    digits = minor_digits(institution.currency)
    buckets = Table(
        "buckets",
        "dashboards.home.waterfall",
        [
            Column("dashboards.col.bucket", "code"),
            Column("dashboards.col.accounts", "count"),
            Column("dashboards.col.balance", "money"),
        ],
        [[bucket, accounts, balance] for bucket, accounts, balance in home.buckets]
        if home.snapshot
        else [],
        note=text("dashboards.home.waterfall_note", day=shown(home.snapshot, "date", viewer))
        if home.snapshot
        else "",
        empty="dashboards.home.no_snapshot",
        chart={
            "kind": "waterfall",
            "x": [
                step.label if step.label != "total" else text("dashboards.total")
                for step in home.waterfall
            ],
            "base": [float(exported(step.base, "money", digits)) for step in home.waterfall],
            "values": [float(exported(step.value, "money", digits)) for step in home.waterfall],
            "y_name": text("dashboards.axis.balance", currency=institution.currency),
        },
    )
    roll_columns = [
        Column("dashboards.col.from_bucket", "code"),
        Column("dashboards.col.accounts", "count"),
    ]
    roll_columns += [Column(f"dashboards.state.{state}", "percent") for state in home.roll_states]
    roll = Table(
        "roll_rates",
        "dashboards.home.roll",
        roll_columns,
        [
            [row.from_bucket, row.accounts]
            + [
                (row.to[state] / row.accounts) if row.accounts else None
                for state in home.roll_states
            ]
            for row in home.roll
            if row.accounts
        ],
        note=text(
            "dashboards.home.roll_note",
            since=shown(home.roll_day.replace(day=1), "date", viewer),
            day=shown(home.roll_day, "date", viewer),
        )
        if home.roll_day
        else "",
        empty="dashboards.home.no_snapshot",
    )
    roll.chart = {
        "kind": "heatmap",
        "x": [text(f"dashboards.state.{state}") for state in home.roll_states],
        "y": [row[0] for row in roll.rows],
        "x_name": text("dashboards.axis.to_state"),
        "y_name": text("dashboards.axis.from_bucket"),
        "data": [
            [x, y, None if value is None else round(value * 100, 1)]
            for y, row in enumerate(roll.rows)
            for x, value in enumerate(row[2:])
        ],
    }
    # The month ``span`` ends in is counted only to its last day: say so, or its lower figures
    # read as a fall.
    to_date = span.last.strftime("%Y-%m") if (span.last + timedelta(days=1)).day != 1 else None
    months = [
        text("dashboards.home.month_to_date", month=p.month, day=i18n.day(span.last, viewer.locale))
        if p.month == to_date
        else p.month
        for p in home.trend
    ]
    # The chart's axis names the months only: ECharts spaces the labels by the longest, and one
    # with a date left room for a single label on a phone. The partial month is marked with *,
    # and the table and the note say to which day.
    axis_months = [
        text("dashboards.home.month_so_far", month=p.month) if p.month == to_date else p.month
        for p in home.trend
    ]
    trend = Table(
        "recovery_trend",
        "dashboards.home.trend",
        [
            Column("dashboards.col.month", "code"),
            Column("dashboards.col.collected", "money"),
            Column("dashboards.col.delinquent_at_start", "money"),
            Column("dashboards.col.recovery", "percent"),
        ],
        [
            [month, p.collected, p.delinquent_at_start, p.recovery]
            for month, p in zip(months, home.trend, strict=True)
        ],
        note=text("dashboards.home.trend_note")
        + (
            " "
            + text(
                "dashboards.home.trend_partial",
                month=to_date,
                day=i18n.day(span.last, viewer.locale),
            )
            if any(p.month == to_date for p in home.trend)
            else ""
        ),
        chart={
            "x": axis_months,
            "wide_axis": True,
            "y_name": text("dashboards.axis.collected", currency=institution.currency),
            "series": [
                {
                    "name": text("dashboards.col.collected"),
                    "type": "bar",
                    "data": [float(exported(p.collected, "money", digits)) for p in home.trend],
                }
            ],
        },
    )
    work = Table(
        "work_today",
        "dashboards.home.work",
        [
            Column("dashboards.col.queue", "code"),
            Column("dashboards.col.queue_name"),
            Column("dashboards.col.planned", "count"),
            Column("dashboards.col.done", "count"),
            Column("dashboards.col.blocked", "count"),
            Column("dashboards.col.not_started", "count"),
            Column("dashboards.col.unassigned", "count"),
        ],
        [
            [
                queue.code,
                queue.name,
                queue.planned,
                queue.done,
                queue.blocked,
                max(queue.planned - queue.done - queue.blocked, 0),
                queue.unassigned,
            ]
            for queue in home.work
        ],
        note=text("dashboards.home.work_note"),
        empty="dashboards.home.work_empty",
    )
    if any(queue.planned for queue in home.work):
        work.chart = {
            "kind": "ranked",
            "x": [queue.code for queue in home.work],
            "series": [
                {
                    "name": text("dashboards.col.done"),
                    "type": "bar",
                    "data": [q.done for q in home.work],
                },
                {
                    "name": text("dashboards.col.blocked"),
                    "type": "bar",
                    "data": [q.blocked for q in home.work],
                },
                {
                    "name": text("dashboards.col.not_started"),
                    "type": "bar",
                    "data": [max(q.planned - q.done - q.blocked, 0) for q in home.work],
                },
            ],
        }
    alerts = Table(
        "alerts",
        "dashboards.home.alerts",
        [Column("dashboards.col.alert"), Column("dashboards.col.severity")],
        [
            [
                text(f"dashboards.alert.{alert.kind}", **_alert_values(alert.values, viewer)),
                text(f"dashboards.severity.{alert.severity}"),
            ]
            for alert in home.alerts
        ],
        empty="dashboards.home.no_alerts",
    )
    return Board(
        "home",
        span,
        [headlines, alerts, buckets, roll, trend, work],
        {
            "cards": cards,
            "previous": home.previous,
            "refreshed": home.refreshed,
            "alerts": home.alerts,
            "filters": _filters(span, product, team),
            "team_leads": _team_leads(session, institution),
        },
    )


@router.get("/", response_class=HTMLResponse)
def home_page(
    viewer: ReadHome,
    session: SessionDep,
    start: FromDay = None,
    end: ToDay = None,
    product: ProductFilter = None,
    team_lead_id: TeamFilter = None,
) -> HTMLResponse:
    """The home page: the manager's dashboard for KPI readers, else counts of one's portfolio."""
    assert viewer.principal is not None
    if not viewer.allows("kpis:read") or viewer.principal.institution_id is None:
        if _id_of(team_lead_id) is not None:
            # The filter is an id: one outside the caller's institution is not found.
            daily.team_agents(
                session, principal=viewer.principal, team_lead_id=_id_of(team_lead_id)
            )
        boards = [
            (path, key)
            for path, key, permission in (
                ("/analytics/compliance", "dashboards.compliance.heading", "compliance:read"),
                ("/analytics/quality", "dashboards.quality.heading", "dq:read"),
            )
            if viewer.allows(permission)
        ]
        return render(
            viewer,
            "dashboard.html",
            {"counts": _counts(session, viewer), "boards": boards},
            active_nav="dashboard",
        )
    board = home_board(
        session, viewer, start=start, end=end, product_code=product, team_code=team_lead_id
    )
    return _page(viewer, board, "analytics/home.html", active_nav="dashboard")


# --- Agents and teams. ---------------------------------------------------------------------------


def agents_board(
    session: Session,
    viewer: Viewer,
    *,
    start: str | None,
    end: str | None,
    team_code: str | None,
) -> Board:
    """Build the fair leaderboard: every agent's figures against their bucket mix."""
    team = _id_of(team_code)
    institution = _institution(session, viewer)
    assert viewer.principal is not None
    span = _span(session, institution, start, end)
    report = kpis.agent_report(
        session,
        principal=viewer.principal,
        as_of=span.last,
        start=span.first,
        end=span.last,
        team_lead_id=team,
    )
    rows: list[list[Any]] = []
    for line in report.agents:
        figures = line.figures
        rows.append(
            [
                line.agent.display_name or line.agent.username,
                figures.overall_index,
                figures.attempts,
                figures.worked_hours,
                figures.attempts_per_hour.actual,
                figures.attempts_per_hour.index,
                figures.right_party_rate.actual,
                figures.right_party_rate.expected,
                figures.right_party_rate.index,
                figures.promises_per_hour.actual,
                figures.promises_per_hour.index,
                figures.kept_rate.actual,
                figures.kept_rate.index,
                None if figures.collected.actual is None else int(figures.collected.actual),
                None if figures.collected.expected is None else round(figures.collected.expected),
                figures.collected.index,
                figures.block_rate.actual,
                figures.violations.actual,
                line.agent.id,
            ]
        )
    table = Table(
        "leaderboard",
        "dashboards.agents.leaderboard",
        [
            Column("dashboards.col.agent"),
            Column("dashboards.col.overall_index", "index"),
            Column("dashboards.col.attempts", "count"),
            Column("dashboards.col.worked_hours", "number"),
            Column("dashboards.col.attempts_per_hour", "number"),
            Column("dashboards.col.pace_index", "index"),
            Column("dashboards.col.rpc_rate", "percent"),
            Column("dashboards.col.rpc_expected", "percent"),
            Column("dashboards.col.rpc_index", "index"),
            Column("dashboards.col.promises_per_hour", "number"),
            Column("dashboards.col.promises_index", "index"),
            Column("dashboards.col.kept_rate", "percent"),
            Column("dashboards.col.kept_index", "index"),
            Column("dashboards.col.collected", "money"),
            Column("dashboards.col.collected_expected", "money"),
            Column("dashboards.col.collected_index", "index"),
            Column("dashboards.col.block_rate", "percent"),
            Column("dashboards.col.violations", "count"),
            Column("dashboards.col.agent_id", "code"),
        ],
        rows,
        note=viewer.text("dashboards.agents.note"),
        empty="dashboards.agents.empty",
    )
    ranked = [row for row in rows if row[1] is not None]
    if ranked:
        table.chart = {
            "kind": "ranked",
            "x": [row[0] for row in ranked],
            "x_name": "",
            "y_name": viewer.text("dashboards.col.overall_index"),
            "series": [
                {
                    "name": viewer.text("dashboards.col.overall_index"),
                    "type": "bar",
                    "data": [round(row[1], 2) for row in ranked],
                }
            ],
        }
    return Board(
        "agents",
        span,
        [table],
        {
            "filters": _filters(span, None, team),
            "team_leads": _team_leads(session, institution),
        },
    )


@router.get("/analytics/agents", response_class=HTMLResponse)
def agents_page(
    viewer: ReadKpis,
    session: SessionDep,
    start: FromDay = None,
    end: ToDay = None,
    team_lead_id: TeamFilter = None,
) -> HTMLResponse:
    """The fair leaderboard of agents (and of a team lead's team)."""
    board = agents_board(session, viewer, start=start, end=end, team_code=team_lead_id)
    return _page(viewer, board, "analytics/agents.html", active_nav="performance")


def agent_day_board(
    session: Session, viewer: Viewer, *, agent_code: str | None, day_text: str | None
) -> Board:
    """Build one agent's day: their contacts with outcomes, and the notes they wrote."""
    agent_id, day = _id_of(agent_code), _day_of(day_text, "day")
    institution = _institution(session, viewer)
    assert viewer.principal is not None
    on = day or clock.local_today(institution.timezone)
    agents = [
        (user.id, user.display_name or user.username)
        for user in kpis.agents(session, institution_id=institution.id)
    ]
    contacts_table = Table(
        "contacts",
        "dashboards.day.contacts",
        [
            Column("dashboards.col.time", "moment"),
            Column("dashboards.col.channel"),
            Column("dashboards.col.status"),
            Column("dashboards.col.outcome"),
            Column("dashboards.col.duration", "count"),
            Column("dashboards.col.debtor", "code"),
        ],
        [],
        empty="dashboards.day.no_contacts",
    )
    notes_table = Table(
        "notes",
        "dashboards.day.notes",
        [
            Column("dashboards.col.time", "moment"),
            Column("dashboards.col.note_kind"),
            Column("dashboards.col.note"),
            Column("dashboards.col.amount", "money"),
            Column("dashboards.col.debtor", "code"),
        ],
        [],
        empty="dashboards.day.no_notes",
    )
    chosen = None
    if agent_id is not None:
        chosen = get_scoped(session, User, agent_id, viewer.principal)
        contacts, notes = daily_repository.agent_day(
            session,
            institution_id=institution.id,
            agent=chosen,
            start=clock.start_of_day(on, institution.timezone),
            end=clock.start_of_day(on + timedelta(days=1), institution.timezone),
        )
        contacts_table.rows = [
            [
                contact.at,
                _code(viewer, "compliance.channel", contact.channel),
                _code(viewer, "contact_log.status", contact.status),
                _code(viewer, "contact_log.outcome", contact.outcome) if contact.outcome else "—",
                contact.duration_seconds,
                contact.debtor_id,
            ]
            for contact in contacts
        ]
        notes_table.rows = [
            [
                note.at,
                viewer.text(f"dashboards.note_kind.{note.kind}"),
                note.text,
                note.amount,
                note.debtor_id,
            ]
            for note in notes
        ]
    return Board(
        "agent-day",
        Span(on, on),
        [contacts_table, notes_table],
        {
            "agents": agents,
            "agent": chosen,
            "day": on,
            "filters": {"agent_id": agent_id or "", "day": on.isoformat()},
        },
    )


@router.get("/analytics/agent-day", response_class=HTMLResponse)
def agent_day_page(
    viewer: ReadKpis,
    session: SessionDep,
    agent_id: AgentFilter = None,
    day: DayFilter = None,
) -> HTMLResponse:
    """One agent's day: every contact attempt with its outcome, and the notes they wrote."""
    board = agent_day_board(session, viewer, agent_code=agent_id, day_text=day)
    return _page(viewer, board, "analytics/agent_day.html", active_nav="performance")


# --- Regions. ------------------------------------------------------------------------------------


def regions_board(
    session: Session,
    viewer: Viewer,
    *,
    start: str | None,
    end: str | None,
    level: Level,
) -> Board:
    """Build the region comparison: rates against what each region's bucket mix predicts."""
    institution = _institution(session, viewer)
    assert viewer.principal is not None
    span = _span(session, institution, start, end)
    report = kpis.region_report(
        session,
        principal=viewer.principal,
        as_of=span.last,
        start=span.first,
        end=span.last,
        level=level,
    )
    unknown = viewer.text("dashboards.unknown")
    rows: list[list[Any]] = [
        [
            " ".join(part or unknown for part in item.region),
            item.overall_index,
            item.attempts,
            item.contact_rate.actual,
            item.contact_rate.expected,
            item.ptp_rate.actual,
            item.ptp_rate.expected,
            item.delinquent,
            item.cure_rate.actual,
            item.cure_rate.expected,
        ]
        for item in report.regions
    ]
    table = Table(
        "regions",
        "dashboards.regions.table",
        [
            Column("dashboards.col.region"),
            Column("dashboards.col.overall_index", "index"),
            Column("dashboards.col.attempts", "count"),
            Column("dashboards.col.contact_rate", "percent"),
            Column("dashboards.col.contact_expected", "percent"),
            Column("dashboards.col.ptp_rate", "percent"),
            Column("dashboards.col.ptp_expected", "percent"),
            Column("dashboards.col.delinquent_at_start_count", "count"),
            Column("dashboards.col.cure_rate", "percent"),
            Column("dashboards.col.cure_expected", "percent"),
        ],
        rows,
        note=viewer.text("dashboards.regions.note"),
        empty="dashboards.regions.empty",
    )
    charted = [row for row in rows if row[3] is not None][:20]
    if charted:
        table.chart = {
            "kind": "ranked",
            "percent": True,
            "x": [row[0] for row in charted],
            "series": [
                {
                    "name": viewer.text("dashboards.col.contact_rate"),
                    "type": "bar",
                    "data": [round(row[3] * 100, 1) for row in charted],
                },
                {
                    "name": viewer.text("dashboards.col.contact_expected"),
                    "type": "bar",
                    "dashed": True,
                    "data": [None if row[4] is None else round(row[4] * 100, 1) for row in charted],
                },
            ],
        }
    return Board(
        "regions",
        span,
        [table],
        {"filters": {**_filters(span, None, None), "level": level}, "level": level},
    )


@router.get("/analytics/regions", response_class=HTMLResponse)
def regions_page(
    viewer: ReadKpis,
    session: SessionDep,
    start: FromDay = None,
    end: ToDay = None,
    level: Annotated[Level, Query()] = "province",
) -> HTMLResponse:
    """Provinces or cities, hardest first: their rates against their bucket mix."""
    board = regions_board(session, viewer, start=start, end=end, level=level)
    return _page(viewer, board, "analytics/regions.html", active_nav="performance")


# --- Compliance monitoring. ----------------------------------------------------------------------


def compliance_board(
    session: Session, viewer: Viewer, *, start: str | None, end: str | None
) -> Board:
    """Build compliance monitoring: blocks and violations by rule, agent, team, region, channel;
    template reviews waiting; certificates expiring; disputes and complaints."""
    institution = _institution(session, viewer)
    span = _span(session, institution, start, end)
    text = viewer.text
    begin = clock.start_of_day(span.first, institution.timezone)
    finish = clock.start_of_day(span.last + timedelta(days=1), institution.timezone)
    names = {
        user.id: user.display_name or user.username
        for user in kpis.agents(session, institution_id=institution.id)
    }
    leads = dict(_team_leads(session, institution))
    team_of = {
        user.id: user.team_lead_id for user in kpis.agents(session, institution_id=institution.id)
    }

    def decisions(by: str) -> list[tuple[Any, int, int]]:
        rows = daily_repository.sums(
            session,
            institution_id=institution.id,
            metrics=("decisions",),
            first=span.first,
            last=span.last,
            by=("state", by),
        )
        found: dict[Any, list[int]] = {}
        for _metric, state, key, count, _amount in rows:
            pair = found.setdefault(key, [0, 0])
            pair[0] += int(count or 0)
            if state == "blocked":
                pair[1] += int(count or 0)
        return sorted(
            ((key, pair[0], pair[1]) for key, pair in found.items()),
            key=lambda item: (-item[2], str(item[0])),
        )

    block_columns = [
        Column("dashboards.col.decisions", "count"),
        Column("dashboards.col.blocked", "count"),
        Column("dashboards.col.block_rate", "percent"),
    ]

    def block_rows(
        rows: list[tuple[Any, int, int]], label: Callable[[Any], str]
    ) -> list[list[Any]]:
        return [
            [label(key), total, blocked, blocked / total if total else None]
            for key, total, blocked in rows
        ]

    by_rule = daily_repository.blocked_rules(
        session, institution_id=institution.id, start=begin, end=finish
    )
    team_rows: dict[Any, list[int]] = {}
    for agent, total, blocked in decisions("agent"):
        pair = team_rows.setdefault(team_of.get(agent) if agent is not None else None, [0, 0])
        pair[0] += total
        pair[1] += blocked
    violations = daily_repository.violation_counts(
        session, institution_id=institution.id, start=begin, end=finish
    )
    categories = default_reviewer().categories
    chinese = viewer.locale.startswith("zh")

    def category(code: str) -> str:
        known = categories.get(code)
        return code if known is None else known.name_zh if chinese else known.name_en

    backlog = daily_repository.template_backlog(session, institution_id=institution.id)
    today = clock.local_today(institution.timezone)
    expiring = daily_repository.expiring_certifications(
        session, institution_id=institution.id, until=today + timedelta(days=30)
    )
    disputed, complaints = daily_repository.complaints(
        session, institution_id=institution.id, start=begin, end=finish
    )
    recorded = daily_repository.recorded_complaints(
        session, institution_id=institution.id, start=begin, end=finish
    )
    tables = [
        Table(
            "blocks_by_rule",
            "dashboards.compliance.by_rule",
            [Column("dashboards.col.rule", "code"), Column("dashboards.col.blocked", "count")],
            [[rule, count] for rule, count in sorted(by_rule.items(), key=lambda item: -item[1])],
            empty="dashboards.compliance.no_blocks",
        ),
        Table(
            "blocks_by_channel",
            "dashboards.compliance.by_channel",
            [Column("dashboards.col.channel"), *block_columns],
            block_rows(decisions("channel"), lambda key: _code(viewer, "compliance.channel", key)),
            empty="dashboards.compliance.no_decisions",
        ),
        Table(
            "blocks_by_agent",
            "dashboards.compliance.by_agent",
            [Column("dashboards.col.agent"), *block_columns],
            block_rows(
                decisions("agent"),
                lambda key: (
                    names.get(key, text("dashboards.system")) if key else text("dashboards.system")
                ),
            ),
            empty="dashboards.compliance.no_decisions",
        ),
        Table(
            "blocks_by_team",
            "dashboards.compliance.by_team",
            [Column("dashboards.col.team"), *block_columns],
            block_rows(
                sorted(
                    ((key, pair[0], pair[1]) for key, pair in team_rows.items()),
                    key=lambda item: -item[2],
                ),
                lambda key: leads.get(key, text("dashboards.no_team")),
            ),
            empty="dashboards.compliance.no_decisions",
        ),
        Table(
            "blocks_by_region",
            "dashboards.compliance.by_region",
            [Column("dashboards.col.region"), *block_columns],
            block_rows(decisions("province"), lambda key: key or text("dashboards.unknown")),
            empty="dashboards.compliance.no_decisions",
        ),
        Table(
            "violations",
            "dashboards.compliance.violations",
            [
                Column("dashboards.col.rule", "code"),
                Column("dashboards.col.category"),
                Column("dashboards.col.agent"),
                Column("dashboards.col.status"),
                Column("dashboards.col.count", "count"),
            ],
            [
                [
                    rule,
                    category(code),
                    actor or text("dashboards.system"),
                    _code(viewer, "compliance.violations.status", status),
                    count,
                ]
                for rule, code, actor, status, count in violations
            ],
            empty="dashboards.compliance.no_violations",
        ),
        Table(
            "templates",
            "dashboards.compliance.templates",
            [
                Column("dashboards.col.status"),
                Column("dashboards.col.count", "count"),
                Column("dashboards.col.oldest_waiting", "moment"),
            ],
            [
                [
                    _code(viewer, "compliance.templates.status", status),
                    count,
                    oldest if status == "submitted" else None,
                ]
                for status, count, oldest in backlog
            ],
            empty="dashboards.compliance.no_templates",
        ),
        Table(
            "certifications",
            "dashboards.compliance.certifications",
            [
                Column("dashboards.col.agent"),
                Column("dashboards.col.course"),
                Column("dashboards.col.expires_on", "date"),
            ],
            [[display or name, course, expires] for name, display, course, expires in expiring],
            note=text("dashboards.compliance.certifications_note"),
            empty="dashboards.compliance.no_certifications",
        ),
        Table(
            "complaints",
            "dashboards.compliance.complaints",
            [Column("dashboards.col.kind"), Column("dashboards.col.count", "count")],
            [
                [text("dashboards.compliance.disputed_debtors"), disputed],
                [text("dashboards.compliance.complaints_recorded"), recorded],
            ]
            + [
                [_code(viewer, "contact_log.outcome", outcome), count]
                for outcome, count in sorted(complaints.items())
            ],
        ),
    ]
    rule_table = tables[0]
    if rule_table.rows:
        rule_table.chart = {
            "kind": "ranked",
            "x": [row[0] for row in rule_table.rows[:15]],
            "series": [
                {
                    "name": text("dashboards.col.blocked"),
                    "type": "bar",
                    "data": [row[1] for row in rule_table.rows[:15]],
                }
            ],
        }
    return Board(
        "compliance",
        span,
        tables,
        {"filters": _filters(span, None, None)},
    )


@router.get("/analytics/compliance", response_class=HTMLResponse)
def compliance_page(
    viewer: ReadCompliance, session: SessionDep, start: FromDay = None, end: ToDay = None
) -> HTMLResponse:
    """Compliance monitoring for a period."""
    board = compliance_board(session, viewer, start=start, end=end)
    return _page(viewer, board, "analytics/compliance.html", active_nav="compliance")


# --- Data quality. -------------------------------------------------------------------------------


def quality_board(session: Session, viewer: Viewer, *, start: str | None, end: str | None) -> Board:
    """Build data quality over time: imports per day and kind, rows read and rejected."""
    institution = _institution(session, viewer)
    span = _span(session, institution, start, end)
    if not start:
        span = Span(span.last - timedelta(days=89), span.last)
    offset = (
        clock.start_of_day(span.last, institution.timezone)
        .astimezone(clock.zone(institution.timezone))
        .utcoffset()
    )
    rows = daily_repository.import_quality(
        session,
        institution_id=institution.id,
        start=clock.start_of_day(span.first, institution.timezone),
        end=clock.start_of_day(span.last + timedelta(days=1), institution.timezone),
        offset_minutes=int(offset.total_seconds() // 60) if offset else 0,
    )
    table = Table(
        "imports",
        "dashboards.quality.table",
        [
            Column("dashboards.col.day", "date"),
            Column("dashboards.col.import_kind"),
            Column("dashboards.col.runs", "count"),
            Column("dashboards.col.rows_read", "count"),
            Column("dashboards.col.rejected", "count"),
            Column("dashboards.col.reject_share", "percent"),
        ],
        [
            [
                day,
                _code(viewer, "imports.kind", kind),
                runs,
                read,
                rejected,
                rejected / read if read else None,
            ]
            for day, kind, runs, read, rejected in rows
        ],
        empty="dashboards.quality.empty",
    )
    per_day: dict[date, list[int]] = {}
    for day, _kind, _runs, read, rejected in rows:
        pair = per_day.setdefault(day, [0, 0])
        pair[0] += read
        pair[1] += rejected
    if per_day:
        days = sorted(per_day)
        table.chart = {
            "percent": True,
            "x": [day.isoformat() for day in days],
            "y_name": viewer.text("dashboards.col.reject_share"),
            "series": [
                {
                    "name": viewer.text("dashboards.col.reject_share"),
                    "data": [
                        round(per_day[day][1] / per_day[day][0] * 100, 2)
                        if per_day[day][0]
                        else None
                        for day in days
                    ],
                }
            ],
        }
    return Board("quality", span, [table], {"filters": _filters(span, None, None)})


@router.get("/analytics/quality", response_class=HTMLResponse)
def quality_page(
    viewer: ReadQuality, session: SessionDep, start: FromDay = None, end: ToDay = None
) -> HTMLResponse:
    """Data quality over time: the import reports' reject shares, day by day."""
    board = quality_board(session, viewer, start=start, end=end)
    return _page(viewer, board, "analytics/quality.html", active_nav="performance")


# --- Rendering and exports. ----------------------------------------------------------------------


def _page(viewer: Viewer, board: Board, template: str, *, active_nav: str) -> HTMLResponse:
    tables = [
        {
            "key": table.key,
            "title": viewer.text(table.title),
            "note": table.note,
            "empty": viewer.text(table.empty),
            "columns": [
                {"label": viewer.text(column.label), "kind": column.kind}
                for column in table.columns
            ],
            "rows": [
                [
                    shown(value, column.kind, viewer)
                    for value, column in zip(row, table.columns, strict=True)
                ]
                for row in table.rows
            ],
            "chart": table.chart,
        }
        for table in board.tables
    ]
    context = {
        "board": board,
        "tables": {table["key"]: table for table in tables},
        "table_list": tables,
        "span": board.span,
        "products": [str(product) for product in Product],
        "can_export": viewer.allows("dashboards:export"),
        **board.extra,
    }
    return render(viewer, template, context, active_nav=active_nav)


def _export(
    viewer: Viewer,
    session: Session,
    board: Board,
    table_key: str,
    file_format: Literal["csv", "xlsx"],
    filters: dict[str, Any],
) -> Response:
    institution = _institution(session, viewer)
    assert viewer.principal is not None
    table = board.table(table_key)
    digits = minor_digits(institution.currency)
    now = clock.utcnow()
    header = [
        (viewer.text("dashboards.export.institution"), institution.name),
        (viewer.text("dashboards.export.user"), viewer.principal.username),
        (
            viewer.text("dashboards.export.at"),
            i18n.moment(now, viewer.locale, viewer.timezone),
        ),
    ]
    if board.span is not None:
        header.append(
            (
                viewer.text("dashboards.export.period"),
                f"{board.span.first.isoformat()} – {board.span.last.isoformat()}",
            )
        )
    header += [
        (viewer.text(f"dashboards.filter.{name}"), str(value))
        for name, value in filters.items()
        if value not in (None, "")
    ]
    sheet = Sheet(
        title=f"{viewer.text(f'dashboards.{board.name}.heading')} – {viewer.text(table.title)}",
        header=header,
        columns=[_column_label(column, viewer) for column in table.columns],
        rows=[
            [
                exported(value, column.kind, digits)
                for value, column in zip(row, table.columns, strict=True)
            ]
            for row in table.rows
        ],
    )
    audit.record(
        session,
        actor=viewer.principal.actor,
        action="dashboards.export",
        object_type="dashboard",
        object_id=f"{board.name}/{table.key}",
        institution_id=institution.id,
        details={
            "format": file_format,
            "rows": len(table.rows),
            "filters": {
                key: str(value) for key, value in filters.items() if value not in (None, "")
            },
        },
    )
    body = to_csv(sheet) if file_format == "csv" else to_xlsx(sheet)
    name = f"{board.name}-{table.key}-{now:%Y%m%d-%H%M}.{file_format}"
    return Response(
        body,
        media_type=CSV_MEDIA_TYPE if file_format == "csv" else XLSX_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


TableKey = Annotated[str, Query(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]


def _export_routes(fmt: Literal["csv", "xlsx"]) -> None:
    """Register ``/<dashboard>/export.<fmt>`` for every dashboard."""

    def home_export(
        viewer: Annotated[Viewer, viewer_with("kpis:read")],
        session: SessionDep,
        table: TableKey,
        start: FromDay = None,
        end: ToDay = None,
        product: ProductFilter = None,
        team_lead_id: TeamFilter = None,
    ) -> Response:
        board = home_board(
            session, viewer, start=start, end=end, product_code=product, team_code=team_lead_id
        )
        filters = {"product": product, "team_lead_id": team_lead_id}
        return _export(viewer, session, board, table, fmt, filters)

    def agents_export(
        viewer: ReadKpis,
        session: SessionDep,
        table: TableKey,
        start: FromDay = None,
        end: ToDay = None,
        team_lead_id: TeamFilter = None,
    ) -> Response:
        board = agents_board(session, viewer, start=start, end=end, team_code=team_lead_id)
        return _export(viewer, session, board, table, fmt, {"team_lead_id": team_lead_id})

    def agent_day_export(
        viewer: ReadKpis,
        session: SessionDep,
        table: TableKey,
        agent_id: AgentFilter = None,
        day: DayFilter = None,
    ) -> Response:
        board = agent_day_board(session, viewer, agent_code=agent_id, day_text=day)
        return _export(viewer, session, board, table, fmt, {"agent_id": agent_id})

    def regions_export(
        viewer: ReadKpis,
        session: SessionDep,
        table: TableKey,
        start: FromDay = None,
        end: ToDay = None,
        level: Annotated[Level, Query()] = "province",
    ) -> Response:
        board = regions_board(session, viewer, start=start, end=end, level=level)
        return _export(viewer, session, board, table, fmt, {"level": level})

    def compliance_export(
        viewer: ReadCompliance,
        session: SessionDep,
        table: TableKey,
        start: FromDay = None,
        end: ToDay = None,
    ) -> Response:
        board = compliance_board(session, viewer, start=start, end=end)
        return _export(viewer, session, board, table, fmt, {})

    def quality_export(
        viewer: ReadQuality,
        session: SessionDep,
        table: TableKey,
        start: FromDay = None,
        end: ToDay = None,
    ) -> Response:
        board = quality_board(session, viewer, start=start, end=end)
        return _export(viewer, session, board, table, fmt, {})

    for path, endpoint in (
        ("/analytics/home", home_export),
        ("/analytics/agents", agents_export),
        ("/analytics/agent-day", agent_day_export),
        ("/analytics/regions", regions_export),
        ("/analytics/compliance", compliance_export),
        ("/analytics/quality", quality_export),
    ):
        router.add_api_route(
            f"{path}/export.{fmt}",
            endpoint,
            methods=["GET"],
            dependencies=[Export],
            response_class=Response,
            name=f"{path.rsplit('/', 1)[1]}_export_{fmt}",
        )


_export_routes("csv")
_export_routes("xlsx")
