"""Where each domain adds its routers and middleware to the app."""

from __future__ import annotations

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    """Attach every domain's routers to ``app``; one import and one line per domain."""
    from recoup.identity.middleware import install as install_security

    install_security(app)
    from recoup.identity.api import router as identity_router

    app.include_router(identity_router)
    from recoup.web.app import install as install_web

    install_web(app)
    from recoup.identity.views import router as identity_pages

    app.include_router(identity_pages)
    from recoup.portfolio.api import router as portfolio_router

    app.include_router(portfolio_router)
    from recoup.audit.api import router as audit_router

    app.include_router(audit_router)
    from recoup.portfolio.views import router as portfolio_pages

    app.include_router(portfolio_pages)
    from recoup.audit.views import router as audit_pages

    app.include_router(audit_pages)
    from recoup.ingest.api import router as dq_router

    app.include_router(dq_router)
    from recoup.ingest.views import router as dq_pages

    app.include_router(dq_pages)
    from recoup.compliance.api import router as compliance_router

    app.include_router(compliance_router)
    from recoup.compliance.views import router as compliance_pages

    app.include_router(compliance_pages)
    from recoup.scoring.api import router as scoring_router

    app.include_router(scoring_router)
    from recoup.scoring.views import router as scoring_pages

    app.include_router(scoring_pages)
    from recoup.contact.api import router as contact_router

    app.include_router(contact_router)
    from recoup.contact.views import router as contact_pages

    app.include_router(contact_pages)
    from recoup.workbench.api import router as workbench_router

    app.include_router(workbench_router)
    from recoup.workbench.views import router as workbench_pages

    app.include_router(workbench_pages)
    from recoup.analytics.api import router as analytics_router

    app.include_router(analytics_router)
    from recoup.analytics.views import router as analytics_pages

    app.include_router(analytics_pages)
    from recoup.cases.api import router as cases_router

    app.include_router(cases_router)
    from recoup.plans.api import router as plans_router

    app.include_router(plans_router)
    from recoup.plans.views import router as plans_pages

    app.include_router(plans_pages)
    from recoup.allocation.views import router as allocation_pages

    app.include_router(allocation_pages)
    from recoup.workspace.api import router as workspace_router

    app.include_router(workspace_router)
    from recoup.workspace.views import router as workspace_pages

    app.include_router(workspace_pages)
    from recoup.outbox.api import router as outbox_router

    app.include_router(outbox_router)
    from recoup.outbox.views import router as outbox_pages

    app.include_router(outbox_pages)
    from recoup.cycle.views import router as cycle_pages

    app.include_router(cycle_pages)
    from recoup.outreach.dialer.api import router as dialer_router

    app.include_router(dialer_router)
    from recoup.outreach.dialer.views import router as dialer_pages

    app.include_router(dialer_pages)
    from recoup.outreach.visits.api import router as visits_router

    app.include_router(visits_router)
    from recoup.outreach.visits.views import router as visits_pages

    app.include_router(visits_pages)
    from recoup.outreach.letters.api import router as letters_router

    app.include_router(letters_router)
    from recoup.outreach.letters.views import router as letters_pages

    app.include_router(letters_pages)
    from recoup.strategy.api import router as strategy_router

    app.include_router(strategy_router)
    from recoup.strategy.views import router as strategy_pages

    app.include_router(strategy_pages)
    from recoup.webhooks.api import router as webhooks_router

    app.include_router(webhooks_router)
    from recoup.webhooks.views import router as webhooks_pages

    app.include_router(webhooks_pages)
    from recoup.integration.api import router as integration_router

    app.include_router(integration_router)
    from recoup.scripts.api import router as scripts_router

    app.include_router(scripts_router)
    from recoup.scripts.views import router as scripts_pages

    app.include_router(scripts_pages)
    from recoup.simulation.views import router as simulation_pages

    app.include_router(simulation_pages)
