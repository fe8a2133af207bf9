"""How much of an email or attachment Gatekeeper reads before it stops and says so.

Every limit turns hostile or broken input (a zip bomb, a message nested a
thousand deep, a 3,000-page PDF, a PDF of deflated zeros) into a problem on the
item, which the gate holds for a person, instead of unbounded time or memory.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MailLimits:
    max_message_bytes: int = 50 * MB
    max_depth: int = 8  # nesting of multiparts / forwarded messages
    max_parts: int = 500  # MIME parts visited in one message
    max_attachments: int = 100
    max_attachment_bytes: int = 30 * MB  # decoded size of one attachment
    max_unpacked_bytes: int = 100 * MB  # e.g. a DOCX's total uncompressed size (zip bombs)
    max_text_chars: int = 2_000_000  # text kept per source; beyond it a problem is noted
    max_pdf_pages: int = 500
    max_pdf_seconds: float = 10.0  # reading one PDF's pages; checked between pages


DEFAULT_LIMITS = MailLimits()


def describe_bytes(size: int) -> str:
    """A size as staff read it: "30 MB", "512 kB"."""
    if size >= MB:
        return f"{size / MB:,.0f} MB"
    return f"{max(size // 1024, 1):,} kB"
