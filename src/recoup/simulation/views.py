"""The simulation page: strategies compared on the same simulated debtors, with a chart."""

from __future__ import annotations

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from recoup.deps import SessionDep
from recoup.institutions import repository as institutions
from recoup.kit.errors import RecoupError
from recoup.simulation import service
from recoup.web.templating import Viewer, render, viewer_with

router = APIRouter(include_in_schema=False)

ReadSimulations = Annotated[Viewer, viewer_with("strategy:read")]
COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c")
PAGE_MAX_SEEDS = 10
PAGE_MAX_DAYS = 180


def recovery_chart(
    series: list[tuple[str, list[float]]], *, width: int = 640, height: int = 240
) -> Markup:
    """An SVG line chart of recovered amount by day (major units), one line per strategy."""
    left, right, top, bottom = 70, 10, 10, 30
    days = max((len(values) for _, values in series), default=0)
    peak = max((max(values) for _, values in series if values), default=0.0) or 1.0
    plot_width, plot_height = width - left - right, height - top - bottom

    def x(day: int) -> float:
        return left + plot_width * day / max(days - 1, 1)

    def y(value: float) -> float:
        return top + plot_height * (1 - value / peak)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" data-testid="recovery-chart">',
        f'<line x1="{left}" y1="{top + plot_height}" x2="{width - right}" y2="{top + plot_height}" '
        'stroke="#9ca3af"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_height}" stroke="#9ca3af"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        value = peak * fraction
        parts.append(
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#6b7280">{value / 100:,.0f}</text>'
        )
    for day in sorted({0, days // 2, max(days - 1, 0)}):
        parts.append(
            f'<text x="{x(day):.1f}" y="{height - 10}" text-anchor="middle" font-size="11" '
            f'fill="#6b7280">{day + 1}</text>'
        )
    for number, (name, values) in enumerate(series):
        colour = COLOURS[number % len(COLOURS)]
        points = " ".join(f"{x(day):.1f},{y(value):.1f}" for day, value in enumerate(values))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}" '
            f'data-strategy="{escape(name)}"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


@router.get("/simulations", response_class=HTMLResponse)
def simulations(
    viewer: ReadSimulations,
    session: SessionDep,
    strategies: Annotated[str, Query(max_length=200)] = "default,baseline",
    seeds: Annotated[int, Query(ge=1, le=PAGE_MAX_SEEDS)] = 3,
    days: Annotated[int, Query(ge=1, le=PAGE_MAX_DAYS)] = 60,
    run: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    """Compare strategies on a simulated copy of the portfolio (run on asking)."""
    assert viewer.principal is not None
    institution = institutions.require_callers(
        session, viewer.principal.institution_id, what="simulations"
    )
    context: dict[str, Any] = {
        "strategies": strategies,
        "seeds": seeds,
        "days": days,
        "max_seeds": PAGE_MAX_SEEDS,
        "max_days": PAGE_MAX_DAYS,
        "report": None,
        "error": None,
        "colours": COLOURS,
        "command": (
            f"recoup simulate compare --strategies {strategies} --seeds {seeds} --days {days} "
            f"--institution {institution.code}"
        ),
    }
    if run:
        try:
            names = service.parse_names(strategies)
            setup = service.prepare(session, institution=institution)
            named = [
                service.strategy_named(session, institution=institution, name=name)
                for name in names
            ]
            comparison = service.compare(setup, named, days=days, seeds=list(range(1, seeds + 1)))
        except RecoupError as error:
            context["error"] = error.message
        else:
            report = comparison.as_dict()
            context["report"] = report
            context["chart"] = recovery_chart(
                [(item["label"], item["recovered_by_day"]) for item in report["strategies"]]
            )
    return render(viewer, "simulation/compare.html", context, active_nav="strategy")
