"""Debtors, contact points, accounts, payments, delinquency and data quality."""
