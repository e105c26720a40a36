"""Recoup — an open-source financial collections platform."""
