"""Channel adapters: how a message leaves (SMTP, SMS over HTTP, a local log sink)."""
