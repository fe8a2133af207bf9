"""Gatekeeper: every outgoing email and letter checked against the case record before it leaves."""

__version__ = "0.1.0"
