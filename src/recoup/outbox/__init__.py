"""The outbox: messages queued with their gate decision, re-checked and sent exactly once."""
