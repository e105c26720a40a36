"""Daily aggregates: per-day facts the dashboards read, refreshed incrementally."""
