"""Imports of the per-domain model files, so one metadata sees every table.

Each domain adds exactly one ``import recoup.models.<domain>`` line here.
"""

# ruff: noqa: F401
import recoup.models.analytics
import recoup.models.cases
import recoup.models.compliance
import recoup.models.contact
import recoup.models.cycle
import recoup.models.ingest
import recoup.models.integration
import recoup.models.jobs
import recoup.models.outbox
import recoup.models.outreach
import recoup.models.plans
import recoup.models.scoring
import recoup.models.strategy
import recoup.models.webhooks
import recoup.models.workbench
import recoup.models.workspace
