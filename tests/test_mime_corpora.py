"""Every message of the MIME corpora (flanker, mime4j) gives an item, and every broken one a problem.

The corpora are other projects' collections of real and deliberately broken
mail (shared/corpora/mime/README.md). A message is "broken" here when the
damage may hide or lose content; those must be held for a person.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekeeper.item import Channel, Item
from gatekeeper.mail import item_from_email
from tests.conftest import CORPORA

MIME = CORPORA / "mime"
MESSAGES = sorted([*MIME.glob("*/*.eml"), *MIME.glob("*/*.msg")])

BROKEN = {
    # flanker
    "broken-mime.eml": "a bounce pastes the original message, MIME headers and all, as text",
    "enclosed-broken.eml": "a forwarded multipart misses its closing boundary before base64 text",
    "enclosed-broken-body.eml": "a forwarded message's base64 text has text pasted into it",
    "enclosed-endless.eml": "3 MB of parts, far beyond the part limit",
    "false-multipart.eml": "multipart without a single boundary line",
    "mailformed-headers.eml": "the boundary lines do not match the declared boundary",
    "missing-boundaries.eml": "parts written one after another with no boundaries at all",
    # mime4j
    "base64-encoded-text.msg": "a whole MIME message base64-encoded as if it were plain text",
    "basic-plain-with-bad-header-separator.msg": "a space in the blank line after the headers",
    "ending-boundaries.msg": "boundary lines followed by other text",
    "malformedHeader-nocrlfcrlf.msg": "no blank line between headers and text",
    "malformedHeader-noheader.msg": "no headers, no blank line",
    "malformedHeaderStartsBody-nocrlfcrlf.msg": "no blank line between headers and text",
    "malformedHeaderStartsBody-noheader.msg": "no headers, no blank line",
    "missing-boundary.msg": "multipart without a boundary line",
    "missing-inner-boundary.msg": "an inner multipart without boundary lines",
    "missing-inner-start-boundary.msg": "an inner multipart with only its closing boundary",
    "multipartnopart.msg": "multipart with only a closing boundary",
    "obsolete.msg": "obsolete header syntax the parser reads as text",
    "very-long-boundary.msg": "a boundary-like line inside a part splits it",
    "very-very-long-boundary.msg": "a boundary-like line inside a part splits it",
    "weird-boundary.msg": "a boundary-like line inside a part splits it",
}

# Well-formed, or damaged in a way that loses nothing: read without a problem.
READABLE = {
    "text-only.eml": "Hello,\nI'm just testing message parsing\n\nBR,\nBob",
    # The last part runs to the end of the message: all its text is there.
    "missing-final-boundary.eml": "Some body",
    "misplaced-boundary.msg": "This should be a text including the --boundary",
    "intermediate-boundaries.msg": "second part have a start boundary ending with spaces",
    "bad-newlines-multiple-parts.msg": "Text body",
    "multipart.eml": "Sasha",
    "broken-headers.eml": "Do you really know what it takes",
}


def test_the_corpora_are_all_there() -> None:
    assert len(MESSAGES) == 80
    assert {path.name for path in MESSAGES} >= BROKEN.keys() | READABLE.keys()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", MESSAGES, ids=lambda path: path.name)
def test_every_message_gives_an_item_whose_text_can_be_stored(path: Path) -> None:
    raw = path.read_bytes()
    item = item_from_email(raw, original_path=str(path))
    assert item.channel is Channel.EMAIL
    assert item.original is not None
    assert item.original.size == len(raw)
    for text in _all_text(item):
        text.encode("utf-8")  # no stray surrogates from undecodable bytes


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_every_broken_message_yields_a_problem(name: str) -> None:
    item = item_from_email(_corpus_file(name).read_bytes())
    problems = [*item.problems, *(a.problem for a in item.all_attachments() if a.problem)]
    assert problems, BROKEN[name]


@pytest.mark.parametrize(("name", "text"), sorted(READABLE.items()))
def test_readable_messages_give_their_text_without_a_problem(name: str, text: str) -> None:
    item = item_from_email(_corpus_file(name).read_bytes())
    assert item.problems == ()
    assert text in item.body_text


def test_missing_boundaries_is_held_for_its_embedded_parts() -> None:
    item = item_from_email(_corpus_file("missing-boundaries.eml").read_bytes())
    assert item.problems == (
        "the message's MIME structure is broken: its text holds the headers of further parts, "
        "so a boundary is missing",
    )


@pytest.mark.timeout(60)
def test_endless_enclosures_stop_at_the_part_limit() -> None:
    item = item_from_email(_corpus_file("enclosed-endless.eml").read_bytes())
    assert item.problems == ("the message has more than 500 parts: the rest of it was not read",)
    assert item.body_text == "Hello"


@pytest.mark.timeout(60)
def test_the_torture_test_gives_every_attachment() -> None:
    item = item_from_email(_corpus_file("torture.eml").read_bytes())
    attachments = item.all_attachments()
    assert len(attachments) == 33
    assert sum(a.content_type == "message/rfc822" for a in attachments) == 10
    assert all(a.problem for a in attachments if a.content_type.startswith(("audio/", "image/")))


def test_a_forwarded_message_encoded_in_base64_is_still_read() -> None:
    item = item_from_email(_corpus_file("base64encoded-rfc822message.msg").read_bytes())
    (forwarded,) = item.attachments
    assert (forwarded.content_type, forwarded.text, forwarded.problem) == (
        "message/rfc822",
        "Text body",
        None,
    )


def _corpus_file(name: str) -> Path:
    (path,) = (path for path in MESSAGES if path.name == name)
    return path


def _all_text(item: Item) -> list[str]:
    texts = [item.subject, item.body_text, item.sender or "", *item.problems]
    texts += [f"{r.address} {r.display_name}" for r in item.recipients]
    for attachment in item.all_attachments():
        texts += [attachment.name, attachment.text, attachment.problem or ""]
    return texts
