"""Institution policy: stricter-only settings over a rule pack, proposed and approved."""
