"""Users, roles, permissions, sessions, API keys, tenant scoping and PII protection."""
