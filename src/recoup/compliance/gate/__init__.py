"""The contact gate: planned contacts decided, reserved, claimed and logged."""
