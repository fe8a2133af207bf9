"""Raw email bytes become an `Item`: who sends it, who receives it, and all the text it carries."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekeeper.item import Channel, Recipient, RecipientKind, Segment
from gatekeeper.mail import MailLimits, item_from_email
from tests import mailfiles as mf


def recipients(
    raw: bytes, envelope_recipients: Sequence[str] = ()
) -> list[tuple[RecipientKind, str | None, str | None]]:
    item = item_from_email(raw, envelope_recipients=envelope_recipients)
    return [(r.kind, r.address, r.display_name) for r in item.recipients]


# Who sends, who receives


def test_a_plain_message_gives_sender_subject_id_recipients_and_text() -> None:
    raw = mf.as_bytes(mf.email_message())
    item = item_from_email(raw, original_path="/spool/1.eml")
    assert item.channel is Channel.EMAIL
    assert item.sender == "jane.smith@council.example.org"
    assert item.subject == "Contact arrangements"
    assert item.message_id == "<20250303100200.1@council.example.org>"
    assert item.recipients == (Recipient(RecipientKind.TO, "m.smith77@example.com", "Mark Smith"),)
    assert item.body == (Segment("Dear Mark,\n\nThe contact session is on Tuesday.\n\nJane"),)
    assert item.problems == ()
    assert item.original is not None
    assert item.original.sha256 == hashlib.sha256(raw).hexdigest()
    assert (item.original.size, item.original.path) == (len(raw), "/spool/1.eml")


def test_the_envelope_sender_wins_over_the_from_header() -> None:
    raw = mf.as_bytes(mf.email_message())
    assert item_from_email(raw, sender="relay-user@council.example.org").sender == (
        "relay-user@council.example.org"
    )


def test_display_names_with_commas_and_encoded_words_are_decoded() -> None:
    raw = mf.raw_email(
        """
From: =?utf-8?q?J=C3=B6rg_M=C3=BCller=2C_Social_Worker?= <jorg@council.example.org>
To: "Smith, Mark" <m.smith77@example.com>, =?utf-8?b?U21pdGgsIEFubmE=?= <anna@example.net>
Subject: =?utf-8?q?R=C3=A9union_de_famille?=
""",
        "Hello",
    )
    item = item_from_email(raw)
    assert item.subject == "Réunion de famille"
    assert [(r.address, r.display_name) for r in item.recipients] == [
        ("m.smith77@example.com", "Smith, Mark"),
        ("anna@example.net", "Smith, Anna"),
    ]
    assert item.sender == "jorg@council.example.org"


def test_to_cc_and_bcc_headers_give_their_kinds() -> None:
    raw = mf.as_bytes(
        mf.email_message(to="a@example.com", cc="Bea <b@example.com>", bcc="c@example.com")
    )
    assert recipients(raw) == [
        (RecipientKind.TO, "a@example.com", None),
        (RecipientKind.CC, "b@example.com", "Bea"),
        (RecipientKind.BCC, "c@example.com", None),
    ]


def test_an_envelope_recipient_missing_from_the_headers_is_a_bcc_recipient() -> None:
    raw = mf.as_bytes(mf.email_message(to="Mark Smith <m.smith77@example.com>"))
    found = recipients(
        raw, envelope_recipients=["<M.Smith77@Example.com>", "hidden.copy@example.net"]
    )
    assert found == [
        (RecipientKind.TO, "m.smith77@example.com", "Mark Smith"),
        (RecipientKind.BCC, "hidden.copy@example.net", None),
    ]


def test_a_recipient_named_twice_is_kept_once_as_first_named() -> None:
    raw = mf.as_bytes(mf.email_message(to="a@example.com", cc="A <A@EXAMPLE.COM>, b@example.com"))
    assert recipients(raw) == [
        (RecipientKind.TO, "a@example.com", None),
        (RecipientKind.CC, "b@example.com", None),
    ]


def test_undisclosed_recipients_group_gives_only_the_envelope_recipients() -> None:
    raw = mf.raw_email(
        "From: jane@council.example.org\nTo: undisclosed-recipients:;\nSubject: Hi", "Hi"
    )
    assert recipients(raw) == []
    assert recipients(raw, envelope_recipients=["x@example.com"]) == [
        (RecipientKind.BCC, "x@example.com", None)
    ]


def test_group_members_are_recipients() -> None:
    raw = mf.raw_email("From: j@x.org\nTo: Family: a@example.com, b@example.com;\nSubject: s", "")
    assert [address for _, address, _ in recipients(raw)] == ["a@example.com", "b@example.com"]


def test_an_address_that_cannot_be_parsed_is_kept_as_written() -> None:
    raw = mf.raw_email(
        """
From: j@x.org
To: foo@bar@baz, Mark Smith m.smith77@example.com
Cc: a@example.com; b@example.com
Subject: s
""",
        "",
    )
    assert [address for _, address, _ in recipients(raw)] == [
        "foo@bar@baz",
        "Mark Smith m.smith77@example.com",
        "a@example.com",  # Outlook users separate with ";"; neither address is lost
        "b@example.com",
    ]


# The body


def test_multipart_alternative_reads_the_plain_text_not_the_html() -> None:
    raw = mf.as_bytes(mf.email_message("Plain version", html="<p>HTML version</p>"))
    assert item_from_email(raw).body_text == "Plain version"


def test_an_html_only_message_is_read_as_text() -> None:
    message = mf.email_message()
    message.set_content(
        "<html><head><title>x</title><style>p {color:red}</style></head><body>"
        "<p>Dear Mark,</p><p>Contact is on <b>Tuesday</b> &amp; Thursday.</p>"
        "<script>var hidden = 1;</script></body></html>",
        subtype="html",
    )
    item = item_from_email(mf.as_bytes(message))
    assert item.body_text == "Dear Mark,\n\nContact is on Tuesday & Thursday."


def test_a_gmail_html_reply_marks_the_quoted_message() -> None:
    message = mf.email_message()
    message.set_content(mf.GMAIL_REPLY_HTML, subtype="html")
    item = item_from_email(mf.as_bytes(message))
    assert item.new_text == "Yes, Tuesday at 10 is fine.\nJane"
    quoted = "\n".join(s.text for s in item.body if s.quoted)
    assert quoted.startswith("On Mon, 3 Mar 2025 at 09:15, Mark Smith")
    assert "Lily's school report is attached." in quoted


def test_an_outlook_html_reply_quotes_everything_after_its_header_block() -> None:
    message = mf.email_message()
    message.set_content(mf.OUTLOOK_REPLY_HTML, subtype="html")
    item = item_from_email(mf.as_bytes(message))
    assert item.new_text == "Thank you, I will pass this on."
    assert "Lily has been unwell this week." in item.body_text
    assert "Lily" not in item.new_text


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, 3 Mar 2025 at 09:15, Mark Smith <m.smith77@example.com> wrote:",
        "On Mon, 3 Mar 2025 at 09:15, Mark Smith <\nm.smith77@example.com> wrote:",
        "-----Original Message-----\nFrom: Mark Smith\nSent: 03 March 2025 09:15",
        "________________________________\nFrom: Mark Smith <m.smith77@example.com>\n"
        "Sent: Monday, March 3, 2025 9:15 AM\nTo: Jane Smith\nSubject: Contact",
        "---------- Forwarded message ---------\nFrom: Mark Smith <m.smith77@example.com>",
        "Begin forwarded message:\n\nFrom: Mark Smith <m.smith77@example.com>",
    ],
)
def test_a_plain_text_reply_quotes_everything_after_the_attribution(attribution: str) -> None:
    body = f"Thank you, noted.\n\n{attribution}\n\nLily has been unwell this week."
    item = item_from_email(mf.as_bytes(mf.email_message(body)))
    assert item.new_text == "Thank you, noted."
    assert item.body_text.endswith("Lily has been unwell this week.")


def test_interleaved_quote_lines_are_quoted_and_answers_are_new() -> None:
    body = "> Is Tuesday fine?\nYes.\n\n> And the report?\nAttached.\n"
    item = item_from_email(mf.as_bytes(mf.email_message(body)))
    assert item.body == (
        Segment("> Is Tuesday fine?", quoted=True),
        Segment("Yes.", quoted=False),
        Segment("> And the report?", quoted=True),
        Segment("Attached.", quoted=False),
    )


def test_ordinary_sentences_starting_with_on_are_not_attributions() -> None:
    body = "On Monday the children wrote:\nthank-you cards for the carers."
    assert item_from_email(mf.as_bytes(mf.email_message(body))).new_text == body


def test_a_body_in_latin_1_and_an_unknown_charset_is_still_read() -> None:
    latin = mf.raw_email(
        "From: j@x.org\nTo: m@x.org\nSubject: s\nContent-Type: text/plain; charset=iso-8859-1",
        "",
    ) + "Café Zoë".encode("latin-1")
    unknown = mf.raw_email(
        "From: j@x.org\nTo: m@x.org\nSubject: s\nContent-Type: text/plain; charset=x-nonsense",
        "Café Zoë",
    )
    assert item_from_email(latin).body_text == "Café Zoë"
    assert item_from_email(unknown).body_text == "Café Zoë"
    assert item_from_email(unknown).problems == ()


def test_binary_junk_labelled_as_text_is_a_problem() -> None:
    raw = mf.raw_email("From: j@x.org\nTo: m@x.org\nSubject: s", "") + bytes(range(256)) * 4
    assert "character encoding" in " ".join(item_from_email(raw).problems)


# Attachments


def test_attachments_are_read_by_what_they_are() -> None:
    message = mf.email_message()
    mf.attach(message, "letter.pdf", mf.text_pdf("Dear Mrs Jones"), "application/pdf")
    mf.attach(message, "plan.docx", mf.word_file(["Care plan for Lily"]), "application/msword")
    mf.attach(message, "contacts.csv", b"name,phone\nAnna Jones,0123\n", "text/csv")
    item = item_from_email(mf.as_bytes(message))
    assert [(a.name, a.text.strip(), a.problem) for a in item.attachments] == [
        ("letter.pdf", "Dear Mrs Jones", None),
        ("plan.docx", "Care plan for Lily", None),
        ("contacts.csv", "name,phone\nAnna Jones,0123", None),
    ]
    assert item.attachments[0].size == len(mf.text_pdf("Dear Mrs Jones"))


def test_a_forwarded_message_is_an_attachment_holding_its_own_attachments() -> None:
    inner = mf.email_message("Report attached.", subject="Report for Lily")
    mf.attach(inner, "report.pdf", mf.text_pdf("School report: Lily Smith"), "application/pdf")
    item = item_from_email(mf.as_bytes(mf.forwarded(inner)))
    (message,) = item.attachments
    assert message.content_type == "message/rfc822"
    assert message.text.splitlines()[:2] == [
        "From: Jane Smith <jane.smith@council.example.org>",
        "To: Mark Smith <m.smith77@example.com>",
    ]
    assert "Subject: Report for Lily" in message.text
    assert message.text.endswith("Report attached.")
    assert [(a.name, a.text) for a in message.inner] == [
        ("report.pdf", "School report: Lily Smith")
    ]
    assert [a.name for a in item.all_attachments()] == [message.name, "report.pdf"]


def test_an_inline_signature_logo_is_not_an_attachment_but_a_sent_picture_is() -> None:
    message = mf.with_signature_logo(mf.email_message(html="<p>x</p>"), mf.png_image())
    mf.attach(message, "bruise.jpg", mf.jpeg_image(), "image/jpeg")
    item = item_from_email(mf.as_bytes(message))
    assert [(a.name, a.problem) for a in item.attachments] == [
        ("bruise.jpg", "JPEG image attachment: its content cannot be read automatically")
    ]


def test_a_screenshot_pasted_into_the_body_is_checked_like_an_attachment() -> None:
    message = mf.with_signature_logo(mf.email_message(html="<p>x</p>"), mf.screenshot_png())
    (pasted,) = item_from_email(mf.as_bytes(message)).attachments
    assert pasted.problem == "PNG image attachment: its content cannot be read automatically"


def test_an_empty_attachment_has_no_text_and_no_problem() -> None:
    message = mf.attach(mf.email_message(), "empty.txt", b"", "text/plain")
    (attachment,) = item_from_email(mf.as_bytes(message)).attachments
    assert (attachment.name, attachment.size, attachment.text, attachment.problem) == (
        "empty.txt",
        0,
        "",
        None,
    )


def test_a_calendar_alternative_is_read_as_an_attachment() -> None:
    message = mf.email_message("Meeting", html="<p>Meeting</p>")
    message.add_alternative(
        "BEGIN:VCALENDAR\nATTENDEE:mailto:anna@example.net\nEND:VCALENDAR\n", subtype="calendar"
    )
    item = item_from_email(mf.as_bytes(message))
    assert item.body_text == "Meeting"
    assert "anna@example.net" in item.attachments[0].text


def test_a_damaged_base64_attachment_is_a_problem() -> None:
    raw = mf.raw_email(
        """
From: j@x.org
To: m@x.org
Subject: s
Content-Type: multipart/mixed; boundary=b
""",
        """--b
Content-Type: text/plain

Hello
--b
Content-Type: application/pdf
Content-Disposition: attachment; filename=report.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQKJ
--b--
""",
    )
    item = item_from_email(raw)
    assert item.problems == (
        "the message's MIME structure is broken: an attachment's base64 encoding is damaged",
    )
    assert item.attachments[0].problem == "damaged attachment: its encoding could not be decoded"


# What cannot be read


def test_an_smime_encrypted_message_cannot_be_checked() -> None:
    item = item_from_email(mf.smime_encrypted_email("Lily's assessment"))
    assert item.problems == ("encrypted message: its content cannot be checked",)
    assert item.attachments == ()
    assert item.recipients[0].address == "m.smith77@example.com"


def test_a_pgp_encrypted_message_cannot_be_checked() -> None:
    assert item_from_email(mf.pgp_encrypted_email()).problems == (
        "encrypted message: its content cannot be checked",
    )


def test_an_smime_signed_message_is_read_and_its_signature_ignored() -> None:
    item = item_from_email(mf.smime_signed_email("Signed letter to Mark"))
    assert (item.body_text, item.attachments, item.problems) == ("Signed letter to Mark", (), ())


def test_a_message_over_the_size_limit_gives_its_headers_only() -> None:
    raw = mf.as_bytes(mf.email_message("x" * 5000))
    item = item_from_email(raw, limits=MailLimits(max_message_bytes=1000))
    assert item.problems == ("the message is larger than 1 kB: only its headers were read",)
    assert item.recipients[0].address == "m.smith77@example.com"
    assert item.subject == "Contact arrangements"
    assert item.body == ()


def test_too_many_attachments_are_a_problem_and_the_rest_unread() -> None:
    message = mf.email_message()
    for number in range(4):
        mf.attach(message, f"{number}.txt", b"note", "text/plain")
    item = item_from_email(mf.as_bytes(message), limits=MailLimits(max_attachments=2))
    assert [a.name for a in item.attachments] == ["0.txt", "1.txt"]
    assert item.problems == ("the message has more than 2 attachments: the rest were not checked",)


def test_forwards_nested_beyond_the_depth_limit_are_a_problem() -> None:
    item = item_from_email(mf.as_bytes(mf.nested_forwards(6)), limits=MailLimits(max_depth=4))
    assert item.problems == (
        "the message is nested more than 4 levels deep: the rest of it was not read",
    )
    assert item.attachments[0].name == "forwarded message: Level 5"


def test_too_many_parts_are_a_problem() -> None:
    message = mf.email_message()
    for number in range(10):
        mf.attach(message, f"{number}.txt", b"note", "text/plain")
    item = item_from_email(mf.as_bytes(message), limits=MailLimits(max_parts=5))
    assert item.problems == ("the message has more than 5 parts: the rest of it was not read",)


def test_body_text_beyond_the_limit_is_cut_with_a_problem() -> None:
    raw = mf.as_bytes(mf.email_message("word " * 100))
    item = item_from_email(raw, limits=MailLimits(max_text_chars=50))
    assert len(item.body_text) == 50
    assert item.problems == (
        "the message text is longer than 50 characters: the rest was not checked",
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 100,
        b"not an email at all",
        b"From: \r\n\r\n",
        b"Content-Type: multipart/mixed",
    ],
)
def test_anything_at_all_gives_an_item(raw: bytes) -> None:
    item = item_from_email(raw, envelope_recipients=["m@example.com"])
    assert item.channel is Channel.EMAIL
    assert item.recipients == (Recipient(RecipientKind.BCC, "m@example.com"),)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_item_from_email_never_raises_on_damaged_messages(data: st.DataObject) -> None:
    message = mf.email_message(html="<p>Hello <b>Mark</b></p>")
    mf.attach(message, "a.pdf", mf.text_pdf("Report"), "application/pdf")
    raw = bytearray(mf.as_bytes(message))
    for _ in range(data.draw(st.integers(1, 20))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position : position + 1] = data.draw(st.binary(max_size=3))
    item_from_email(bytes(raw))
