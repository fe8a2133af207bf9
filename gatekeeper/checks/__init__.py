"""Checks: small, pure, named functions from an item's context to findings."""

from gatekeeper.checks.registry import CheckSpec, check, registered_checks

__all__ = ["CheckSpec", "check", "registered_checks"]
