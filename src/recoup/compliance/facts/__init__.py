"""Compliance facts about debtors and debts: stated windows and places, zones, dates."""
