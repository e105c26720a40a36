"""The collector's workbench: promises to pay (cases, queues and plans join later)."""
