"""Message templates and scripts: review, four-eyes approval, rendering, violations."""
