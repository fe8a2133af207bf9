"""The built-in checks; importing this module registers them (in the policy's order)."""

from gatekeeper.checks import confidential, content, names, postal, readability, recipients

__all__ = ["confidential", "content", "names", "postal", "readability", "recipients"]
