"""Tenants, their settings and the consumer-finance / commercial-bank presets."""
