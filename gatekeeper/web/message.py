"""A held message made safe to look at: its text, its attachments' text, its HTML made inert.

Content from an email is hostile. The page shows the message as text (the
same reading the gate checked: quoted earlier messages marked). Where the
message has HTML, it can also be seen formatted, but only after nh3 has kept a
small set of harmless tags with no URLs at all (no links, no image sources, no
styles), inside a sandboxed frame that may run nothing, under a page policy
that loads nothing from elsewhere.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any

import nh3

from gatekeeper.item import Attachment, Segment
from gatekeeper.mail import item_from_email

# Tags kept from HTML mail: structure and emphasis, nothing that fetches or runs.
INERT_TAGS = frozenset(
    {"p", "br", "div", "span", "b", "strong", "i", "em", "u", "s", "small", "sub", "sup"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "blockquote"}
    | {"pre", "code", "hr", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption"}
    | {"a", "img"}
)
# Attributes kept: none carries a URL (links lose their target, images their source).
INERT_ATTRIBUTES = {
    "img": {"alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}


@dataclass(frozen=True)
class ShownAttachment:
    name: str
    content_type: str
    size: int
    text: str
    problem: str | None
    depth: int


@dataclass(frozen=True)
class ShownMessage:
    segments: tuple[Segment, ...]
    attachments: tuple[ShownAttachment, ...]
    problems: tuple[str, ...]
    inert_html: str | None  # sanitised HTML for the sandboxed frame, if the message has HTML
    headers: tuple[tuple[str, str], ...]


def show_message(
    raw: bytes, sender: str, recipients: list[str], channel: str = "email"
) -> ShownMessage:
    """Everything the item page shows of an item's content; never raises."""
    if channel == "post":
        return _show_letter(raw, sender)
    item = item_from_email(raw, sender=sender, envelope_recipients=recipients)
    attachments = tuple(shown for top in item.attachments for shown in _flatten(top, depth=0))
    parsed = _parse(raw)
    return ShownMessage(
        segments=item.body,
        attachments=attachments,
        problems=item.problems,
        inert_html=_inert_html(parsed) if parsed is not None else None,
        headers=_headers(parsed) if parsed is not None else (),
    )


def _show_letter(raw: bytes, sender: str) -> ShownMessage:
    """A letter's text as read from its PDF (address block included), as the gate read it."""
    from gatekeeper.post.letter import item_from_letter

    letter = item_from_letter(raw, sender=sender)
    return ShownMessage(letter.body, (), letter.problems, None, ())


def make_inert(markup: str) -> str:
    """HTML with only harmless tags and no URL anywhere: nothing in it can run or load."""
    return nh3.clean(
        markup,
        tags=set(INERT_TAGS),
        clean_content_tags={"script", "style", "title", "head", "template", "noscript", "svg"},
        attributes={k: set(v) for k, v in INERT_ATTRIBUTES.items()},
        url_schemes=set(),
        link_rel=None,
        strip_comments=True,
    )


def _flatten(attachment: Attachment, depth: int) -> list[ShownAttachment]:
    shown = [
        ShownAttachment(
            attachment.name,
            attachment.content_type,
            attachment.size,
            attachment.text,
            attachment.problem,
            depth,
        )
    ]
    for inner in attachment.inner:
        shown.extend(_flatten(inner, depth + 1))
    return shown


def _parse(raw: bytes) -> EmailMessage | None:
    try:
        parsed = message_from_bytes(raw, policy=email_policy.default)
    except Exception:  # the text view above already says what could not be read
        return None
    return parsed if isinstance(parsed, EmailMessage) else None


def _inert_html(message: EmailMessage) -> str | None:
    try:
        body = message.get_body(preferencelist=("html",))
        if body is None or body.get_content_type() != "text/html":
            return None
        content: Any = body.get_content()
    except Exception:  # an unreadable HTML part: the text view shows what was read
        return None
    return make_inert(str(content)) if content else None


def _headers(message: EmailMessage) -> tuple[tuple[str, str], ...]:
    shown = []
    for name in ("From", "To", "Cc", "Reply-To", "Date", "Subject"):
        try:
            value = message.get(name)
        except Exception:  # a malformed header: leave it out of this summary
            continue
        if value is not None:
            shown.append((name, " ".join(str(value).split())))
    return tuple(shown)


@dataclass(frozen=True)
class DiffPiece:
    text: str
    differs: bool


def character_diff(used: str, expected: str) -> tuple[list[DiffPiece], list[DiffPiece]]:
    """Both addresses in runs, marking the characters that differ (for a look-alike)."""
    left: list[DiffPiece] = []
    right: list[DiffPiece] = []
    matcher = difflib.SequenceMatcher(None, used, expected, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        same = tag == "equal"
        if i2 > i1:
            left.append(DiffPiece(used[i1:i2], not same))
        if j2 > j1:
            right.append(DiffPiece(expected[j1:j2], not same))
        if tag == "insert":  # the used address lacks what the record has here
            left.append(DiffPiece("", True))
    return left, right
