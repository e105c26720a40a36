"""Reaching debtors outside the app: dialer call lists, field visit routes and letters."""
