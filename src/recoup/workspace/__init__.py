"""The agent workspace: my cases, the next case to work, the case page and logging a contact."""
