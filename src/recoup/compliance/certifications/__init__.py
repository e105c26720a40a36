"""Agent compliance certificates: granted, checked, expiring."""
