"""``recoup simulate``: try a strategy offline on a simulated copy of the portfolio."""

from __future__ import annotations

import getpass
import json
from typing import Any

import typer

from recoup.kit.cli import console, fail_on_domain_error, progress
from recoup.kit.errors import ValidationFailed

HELP = "Simulate strategies offline on the institution's portfolio (what-if, compare)."

app = typer.Typer(help=HELP, invoke_without_command=True, no_args_is_help=False)


def _money(minor: float) -> str:
    return f"{minor / 100:,.0f}"


@app.callback()
def simulate_command(
    ctx: typer.Context,
    days: int = typer.Option(90, "--days", min=1, max=365, help="Days to simulate"),
    strategy: str = typer.Option(
        "default", "--strategy", help="default (active or preset), baseline, or a strategy code"
    ),
    institution: str | None = typer.Option(None, "--institution", help="Institution code"),
    seed: int = typer.Option(1, "--seed", help="Random seed (the same seed, the same debtors)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
    priority: str = typer.Option(
        "settings",
        "--priority",
        help="How agents pick cases: as the institution's setting allocation.priority says "
        "(settings: uplift × balance by its registered uplift model, else propensity; the "
        "baseline always on propensity), the highest propensity × balance (expected) or, after "
        "training an uplift model on a simulated experiment now, the highest uplift × balance "
        "(uplift)",
    ),
) -> None:
    """Run one strategy for N days on a simulated copy of the institution's live cases."""
    if ctx.invoked_subcommand is not None:
        return
    if institution is None:
        console.print("[red]error:[/] --institution is required (an institution code)")
        raise typer.Exit(code=2)
    from recoup.db import unit_of_work
    from recoup.institutions import repository as institutions
    from recoup.simulation import service

    with fail_on_domain_error():
        service.check_run(days)
        if priority not in {"settings", "expected", "uplift"}:
            raise ValidationFailed(
                f"--priority must be settings, expected or uplift (got '{priority}')"
            )
        with unit_of_work() as session:
            found = institutions.require_by_code(session, institution)
            setup = service.prepare(session, institution=found)
            named = service.strategy_named(session, institution=found, name=strategy)
        allocation = named.allocation
        if priority == "expected":
            allocation = service.PROPENSITY
        elif priority == "uplift":
            from recoup.simulation import uplift

            allocation = service.Allocation(
                priority="uplift",
                basis="uplift",
                scorer=uplift.train(setup, seed=seed)[0].score,
                model_version="trained now on simulated experiments",
            )
        scorer = allocation.scorer
        if as_json:
            result = service.run(
                setup,
                named,
                days=days,
                seed=seed,
                uplift_scorer=scorer,
                priority=allocation.priority,
            )
        else:
            with progress() as bar:
                task = bar.add_task(f"{named.label}", total=days)
                result = service.run(
                    setup,
                    named,
                    days=days,
                    seed=seed,
                    on_day=lambda _day: bar.advance(task),
                    uplift_scorer=scorer,
                    priority=allocation.priority,
                )
    summary: dict[str, Any] = {
        "institution": institution,
        "label": named.label,
        **result.summary(),
        "priority_basis": allocation.basis,
        "uplift_model": allocation.model_version,
    }
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    console.print(
        f"{institution} · {named.label} · {days} days · seed {seed} · {result.cases:,} cases"
    )
    console.print(f"  {allocation.describe()}")
    console.print(
        f"  recovered {_money(result.recovered)} of {_money(result.initial_balance)} "
        f"({result.recovery_rate:.1%}); {result.total_contacts:,} contacts costing "
        f"{_money(result.cost)}; {result.complaints} complaints; violations {result.violations}"
    )
    channels = ", ".join(f"{name} {count:,}" for name, count in sorted(result.contacts.items()))
    console.print(f"  contacts: {channels}")
    if result.blocked_by_rule:
        blocked = ", ".join(
            f"{rule} {count:,}" for rule, count in sorted(result.blocked_by_rule.items())
        )
        console.print(f"  blocked by rule: {blocked}")


@app.command("compare")
def compare_command(
    strategies: str = typer.Option(
        "default,baseline", "--strategies", help="Two or more strategies, comma separated"
    ),
    seeds: int = typer.Option(5, "--seeds", min=1, max=50, help="Seeds (1..N) per strategy"),
    days: int = typer.Option(90, "--days", min=1, max=365, help="Days to simulate"),
    institution: str = typer.Option(..., "--institution", help="Institution code"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
) -> None:
    """Compare strategies on the same simulated debtors: means, spreads, 95 % intervals."""
    from recoup.db import unit_of_work
    from recoup.institutions import repository as institutions
    from recoup.simulation import service

    with fail_on_domain_error():
        names = service.parse_names(strategies)
        service.check_run(days, seeds)
        with unit_of_work() as session:
            found = institutions.require_by_code(session, institution)
            setup = service.prepare(session, institution=found)
            named = [service.strategy_named(session, institution=found, name=n) for n in names]
        seed_list = list(range(1, seeds + 1))
        if as_json:
            comparison = service.compare(setup, named, days=days, seeds=seed_list)
        else:
            with progress() as bar:
                task = bar.add_task("simulating", total=len(named) * seeds)
                comparison = service.compare(
                    setup, named, days=days, seeds=seed_list, on_run=lambda: bar.advance(task)
                )
    report = comparison.as_dict()
    if as_json:
        typer.echo(json.dumps({"institution": institution, **report}, ensure_ascii=False))
        return
    console.print(
        f"{institution} · {days} days · seeds 1–{seeds} · {comparison.cases:,} cases · "
        f"relative to {report['reference']}"
    )
    for item in report["strategies"]:
        recovered = item["recovered_amount"]
        relative = item["relative_recovery"]
        console.print(
            f"  {item['label']}: recovered {_money(recovered['mean'])} ± {_money(recovered['sd'])} "
            f"(95 % {_money(recovered['low'])}–{_money(recovered['high'])}), "
            f"× {relative['mean']:.3f} ± {relative['sd']:.3f}; contacts "
            f"{item['contacts']['mean']:,.0f} ± {item['contacts']['sd']:,.0f}; cost "
            f"{_money(item['cost']['mean'])}; complaints {item['complaints']['mean']:.1f}; "
            f"violations {item['violations']['mean']:.0f}"
        )
        console.print(f"    {item['allocation']}")


@app.command("uplift-train")
def uplift_train(
    institution: str = typer.Option(..., "--institution", help="Institution code"),
    source: str = typer.Option(
        "simulated",
        "--source",
        help="simulated: experiments the simulator runs on the institution's live cases, a "
        "random 50 %% control arm per channel (call, sms, ai_call); experiments: the strategy "
        "engine's own experiment arms (champion path vs control) and the payments that followed",
    ),
    days: int = typer.Option(30, "--days", min=7, max=120, help="Days to pay after contact"),
    cases: int = typer.Option(
        60_000, "--cases", min=2_000, max=500_000, help="Simulated cases per experiment"
    ),
    learner: str = typer.Option("x", "--learner", help="x (X-learner) or t (T-learner)"),
    seed: int = typer.Option(7, "--seed", help="Random seed"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
) -> None:
    """Train and register an uplift model: the extra chance of payment a contact buys."""
    from recoup.db import unit_of_work
    from recoup.institutions import repository as institutions
    from recoup.kit.clock import local_today
    from recoup.scoring import service as scoring
    from recoup.simulation import service as simulation
    from recoup.simulation import uplift
    from recoup.strategy import uplift as experiments

    with fail_on_domain_error():
        if source not in {"simulated", "experiments"}:
            raise ValidationFailed(f"--source must be simulated or experiments (got {source!r})")
        if learner not in {"x", "t"}:
            raise ValidationFailed(f"--learner must be x or t (got {learner!r})")
        trained: uplift.TrainedUplift | experiments.UpliftTraining
        with unit_of_work() as session:
            found = institutions.require_by_code(session, institution)
            if source == "experiments":
                trained = experiments.train_uplift_on_experiments(
                    session,
                    institution=found,
                    as_of=local_today(found.timezone),
                    days=days,
                    learner=learner,
                    seed=seed,
                )
            else:
                setup = simulation.prepare(session, institution=found)
        if source == "simulated":
            trained = uplift.train_and_measure(
                setup, institution=institution, days=days, size=cases, seed=seed, learner=learner
            )
        with unit_of_work() as session:
            found = institutions.require_by_code(session, institution)
            registered = scoring.register_uplift_model(
                session,
                institution=found,
                model=trained.model,
                metrics=trained.metrics,
                data_fingerprint=trained.data_fingerprint,
                source=trained.source,
                actor=f"cli:{getpass.getuser()}",
            )
            version = registered.version
    channels = trained.metrics["channels"]
    if as_json:
        typer.echo(
            json.dumps(
                {"model_version": version, "family": "uplift", **trained.metrics},
                ensure_ascii=False,
            )
        )
        return
    console.print(f"{version}: {trained.source}")
    for channel, figures in channels.items():
        qini, auuc = figures["qini"], figures["auuc"]
        console.print(
            f"  {channel:<8} paid {figures['paid_treated']:.1%} contacted vs "
            f"{figures['paid_control']:.1%} control; held out: Qini {qini['coefficient']:+.3f}, "
            f"AUUC {auuc['coefficient']:+.3f} (0 random, 1 perfect)"
        )
    console.print(f"used by priority where {institution}'s setting allocation.priority is uplift")
