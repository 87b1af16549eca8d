"""Technicians\x27 host tools for the switchboard daemon."""
