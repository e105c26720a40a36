"""Hash-chained, append-only audit trail."""
