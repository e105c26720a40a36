"""Debtor behaviour simulation: strategies tried offline on a simulated portfolio."""
