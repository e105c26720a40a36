"""Compliance: rule packs, institution policy, the contact gate and script review."""
