"""The special-category lexicons: governance's files load, match what they list, and reject
what they must not; the NHS-number validator."""

from __future__ import annotations

from pathlib import Path

import pytest
from spacy.language import Language

from gatekeeper.analysis.language import load_language
from gatekeeper.analysis.lexicon import (
    LexiconError,
    LexiconMatcher,
    Lexicons,
    is_valid_nhs_number,
)
from gatekeeper.analysis.mentions import SPECIAL_CATEGORIES
from gatekeeper.assets import policies_dir

LEXICON_DIR = policies_dir() / "lexicons"


@pytest.fixture(scope="session")
def nlp() -> Language:
    return load_language()


@pytest.fixture(scope="session")
def lexicons() -> Lexicons:
    return Lexicons.load()


@pytest.fixture(scope="session")
def matcher(lexicons: Lexicons, nlp: Language) -> LexiconMatcher:
    return lexicons.compile(nlp)


def hits(matcher: LexiconMatcher, nlp: Language, text: str) -> list[tuple[str, str]]:
    """(category, matched text) for every hit in `text`."""
    return [(h.category, text[h.start : h.end]) for h in matcher.find(nlp.make_doc(text))]


# -- the shipped files ----------------------------------------------------------------------


def test_there_is_one_lexicon_per_special_category(lexicons: Lexicons) -> None:
    assert sorted(lexicons.categories) == sorted(SPECIAL_CATEGORIES)
    assert sorted(p.stem for p in LEXICON_DIR.glob("*.yaml")) == sorted(SPECIAL_CATEGORIES)


@pytest.mark.parametrize("category", SPECIAL_CATEGORIES)
def test_each_lexicon_is_substantial_and_says_where_it_comes_from(
    lexicons: Lexicons, category: str
) -> None:
    lexicon = lexicons[category]
    assert lexicon.size >= 50, f"{category} lists only {lexicon.size} entries"
    assert lexicon.description
    assert lexicon.path is not None
    header = lexicon.path.read_text(encoding="utf-8").split("\ncategory:")[0]
    assert header.startswith(f"# Lexicon: {category}")
    assert "Provenance:" in header and "Rationale:" in header


def test_the_readme_documents_every_key_of_the_format() -> None:
    readme = (LEXICON_DIR / "README.md").read_text(encoding="utf-8")
    for key in ("category", "description", "plurals", "terms", "exact", "patterns"):
        assert f"\n{key}:" in readme, key
    for key in ("regexes", "validator", "exclude"):
        assert f"{key}:" in readme, key
    for category in SPECIAL_CATEGORIES:
        assert f"`{category}.yaml`" in readme


# -- what each category finds ---------------------------------------------------------------

FINDS = {
    "health": [
        ("Her GP has referred her to the community paediatrician.", "GP"),
        ("He was taken to A&E on Saturday night.", "A&E"),
        ("Mother is pregnant and due in June.", "pregnant"),
        ("Jake has a diagnosis of autism and attends a special school.", "diagnosis"),
        ("The hospital admission lasted four days.", "hospital admission"),
        ("She suffered a miscarriage in 2022.", "miscarriage"),
        ("He is prescribed medication for his epilepsy.", "prescribed"),
        ("Lily has type 1 diabetes.", "diabetes"),
        ("Assessment for ADHD is ongoing.", "ADHD"),
        ("The initial health assessments are overdue.", "initial health assessments"),
    ],
    "mental_health": [
        ("She has a history of depression and anxiety.", "depression"),
        ("He was referred to CAMHS after an episode of self-harm.", "CAMHS"),
        ("There were three incidents of self harm last year.", "self harm"),
        ("Father reported suicidal ideation to his GP.", "suicidal ideation"),
        ("She was detained under section 3 in March.", "detained under section 3"),
        ("He was sectioned under the Mental Health Act last year.", "sectioned"),
        ("The psychiatric report is attached.", "psychiatric report"),
        (
            "A diagnosis of emotionally unstable personality disorder was made.",
            "emotionally unstable personality disorder",
        ),
        ("She has been diagnosed with PTSD.", "PTSD"),
    ],
    "drugs_alcohol": [
        ("The hair strand test was positive for cocaine.", "hair strand test"),
        ("Mother admits daily cannabis use.", "cannabis"),
        ("He is on a methadone script.", "methadone script"),
        ("Father's alcohol misuse is the main concern.", "alcohol misuse"),
        ("His AUDIT score was 22.", "AUDIT score"),
        ("She was intoxicated when the police attended.", "intoxicated"),
        ("The drug screening results are awaited.", "drug screening"),
        ("He was seen smoking weed outside the contact centre.", "smoking weed"),
        ("Heroin was found in the property.", "Heroin"),
    ],
    "criminal": [
        ("He has previous convictions for assault.", "previous convictions"),
        ("Father was arrested on 3 May and released on bail.", "arrested"),
        ("He was charged with criminal damage.", "charged with"),
        ("She was cautioned for shoplifting in 2019.", "cautioned"),
        ("He is currently in custody at HMP Leeds.", "in custody"),
        ("The PNC check shows no trace.", "PNC check"),
        ("The police disclosure has been received.", "police disclosure"),
        ("He breached the non-molestation order twice.", "breached the non-molestation order"),
        (
            "He is subject to a suspended sentence and works with his probation officer.",
            "suspended sentence",
        ),
        ("A DBS check was completed for the kinship carer.", "DBS check"),
    ],
    "ethnicity": [
        ("The children are of mixed heritage.", "mixed heritage"),
        ("Mother describes herself as White British.", "White British"),
        ("Father is Black Caribbean.", "Black Caribbean"),
        ("The family are of Pakistani heritage.", "Pakistani heritage"),
        ("The family are part of the Gypsy and Traveller community.", "Gypsy and Traveller"),
        ("An Urdu interpreter will attend the hearing.", "Urdu interpreter"),
        ("Please book an interpreter for Tigrinya.", "interpreter for Tigrinya"),
        ("Her ethnic origin is recorded incorrectly.", "ethnic origin"),
    ],
    "religion": [
        ("Mother is a practising Muslim and the children attend the mosque.", "practising Muslim"),
        ("The family are Jehovah's Witnesses.", "Jehovah's Witnesses"),
        ("The family are Jehovah’s Witnesses.", "Jehovah’s Witnesses"),
        ("He was brought up in the Catholic faith.", "Catholic faith"),
        ("The children need a halal diet during contact.", "halal diet"),
        ("They attend the gurdwara every Sunday.", "attend the gurdwara"),
        ("The imam has written a letter of support.", "imam"),
        ("Father attends St Mary's Church each week.", "attends St Mary's Church"),
        ("She is a devout Christian.", "devout Christian"),
        ("He goes to the synagogue on Saturdays.", "goes to the synagogue"),
    ],
    "sexual_life": [
        ("Mother is in a same-sex relationship.", "same-sex relationship"),
        ("Her sexual orientation is not relevant to the assessment.", "sexual orientation"),
        ("He came out as gay last year.", "came out as gay"),
        ("She is bisexual.", "bisexual"),
        ("Father had a sexual relationship with the lodger.", "sexual relationship"),
        ("The mother works as a sex worker.", "sex worker"),
        ("Her same sex partner will attend.", "same sex partner"),
    ],
    "safeguarding": [
        ("The children are subject to a child protection plan.", "child protection plan"),
        ("A section 47 enquiry was started yesterday.", "section 47 enquiry"),
        ("The s47 enquiry concluded no further action.", "s47 enquiry"),
        ("A strategy meeting was held on Monday.", "strategy meeting"),
        ("The local authority has issued care proceedings.", "care proceedings"),
        ("An interim care order was made today.", "interim care order"),
        ("The case was discussed at MARAC.", "MARAC"),
        ("There is evidence of coercive control.", "coercive control"),
        ("Mother and the children are now in a refuge.", "refuge"),
        ("Referral to the MASH was made by the school.", "MASH"),
        ("He is a looked after child.", "looked after child"),
        ("The child was accommodated under section 20.", "accommodated under section 20"),
        ("Concerns about child sexual exploitation were raised.", "child sexual exploitation"),
        ("An emergency protection order was granted.", "emergency protection order"),
    ],
}


@pytest.mark.parametrize(
    ("category", "sentence", "expected"),
    [(category, s, e) for category, cases in FINDS.items() for s, e in cases],
)
def test_each_category_finds_its_terms(
    matcher: LexiconMatcher, nlp: Language, category: str, sentence: str, expected: str
) -> None:
    assert (category, expected) in hits(matcher, nlp, sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "Please find attached the hearing date, kind regards.",
        "The father seeks custody of both children.",  # child arrangements, not criminal
        "The children are well and happy in their mother's care.",
        "Shared care was agreed at the last hearing.",
        "The case is listed for a final hearing in June.",
        "Please proceed with caution when you read the bundle.",
        "Grace Walker attends Church Street Primary School.",
        "Christian Hall lives at 12 Chapel Street, Leeds.",
        "We will meet at Church Road community centre.",
        "Contact over Christmas will alternate between the parents.",
        "His financial affairs are in order.",
        "Please add the mash potato to the shopping list.",
        "She was charged with the responsibility of collecting the children.",
        "Section 8 of the report sets out the chronology.",
        "He is transitioning to secondary school in September.",
        "School is closed early for Children in Need day.",
        "Ring 0113 496 0000 to book a room.",
    ],
)
def test_ordinary_words_are_not_special(
    matcher: LexiconMatcher, nlp: Language, sentence: str
) -> None:
    assert hits(matcher, nlp, sentence) == []


def test_overlapping_hits_of_one_category_merge_into_the_longest(
    matcher: LexiconMatcher, nlp: Language
) -> None:
    found = hits(matcher, nlp, "An initial child protection conference is booked.")
    assert found == [("safeguarding", "initial child protection conference")]


def test_acronyms_in_exact_match_only_in_capitals(matcher: LexiconMatcher, nlp: Language) -> None:
    assert ("safeguarding", "MASH") in hits(matcher, nlp, "The MASH has the referral.")
    assert hits(matcher, nlp, "the mash has gone cold") == []


# -- NHS numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["943 476 5919", "9434765919", "401-023-2137", "4505577104"])
def test_nhs_numbers_with_a_valid_check_digit_are_accepted(number: str) -> None:
    assert is_valid_nhs_number(number)


@pytest.mark.parametrize(
    "number",
    [
        "943 476 5918",  # wrong check digit
        "9434765910",
        "123456789",  # too short
        "94347659190",  # too long
        "0000000000",  # passes the sum, never issued
        "1000000010",  # check digit would be 10: no valid number
    ],
)
def test_nhs_numbers_with_a_bad_check_digit_are_refused(number: str) -> None:
    assert not is_valid_nhs_number(number)


def test_a_valid_nhs_number_in_text_is_health_data_and_an_invalid_one_is_not(
    matcher: LexiconMatcher, nlp: Language
) -> None:
    assert hits(matcher, nlp, "NHS no: 943 476 5919.") == [("health", "943 476 5919")]
    assert hits(matcher, nlp, "Ref 943 476 5918.") == []
    assert hits(matcher, nlp, "Call 09434765919 or 94347659190") == []  # eleven digits


# -- the format is checked ------------------------------------------------------------------


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = "category: health\ndescription: Health.\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("health.yaml", GOOD + "terms: [gp]\ncolour: blue\n", "unknown key(s) colour"),
        ("health.yaml", "category: wellbeing\ndescription: x\nterms: [a]\n", "is not one of"),
        ("religion.yaml", GOOD + "terms: [gp]\n", "the file for category 'health' is health.yaml"),
        ("health.yaml", "category: health\nterms: [gp]\n", "`description` is required"),
        ("health.yaml", GOOD + "terms: [gp, gp]\n", "lists gp more than once"),
        ("health.yaml", GOOD + "terms: [yes]\n", "is not a phrase"),  # YAML reads `yes` as true
        ("health.yaml", GOOD, "no terms, exact phrases, patterns or regexes"),
        ("health.yaml", GOOD + "regexes: [{name: n, regex: '(', validator: nhs_number}]\n",
         "regex 'n' does not compile"),
        ("health.yaml", GOOD + "regexes: [{name: n, regex: '\\d+', validator: luhn}]\n",
         "unknown validator 'luhn'"),
        ("health.yaml", GOOD + "patterns: [{name: p}]\n", "needs exactly `name`"),
        ("health.yaml", "- just\n- a list\n", "expected a mapping"),
    ],
)  # fmt: skip
def test_a_broken_lexicon_file_is_refused_with_its_name(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    write(tmp_path, name, text)
    with pytest.raises(LexiconError) as raised:
        Lexicons.load(tmp_path)
    assert name in str(raised.value) and message in str(raised.value)


def test_a_pattern_spacy_rejects_is_refused_with_its_name(tmp_path: Path, nlp: Language) -> None:
    write(tmp_path, "health.yaml", GOOD + "patterns: [{name: bad one, tokens: [{LOWR: x}]}]\n")
    lexicons = Lexicons.load(tmp_path)
    with pytest.raises(LexiconError, match=r"health\.yaml: pattern 'bad one'"):
        lexicons.compile(nlp)


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match="no lexicon files"):
        Lexicons.load(tmp_path)


def test_terms_match_their_variants_and_patterns_match_around_their_anchor(
    tmp_path: Path, nlp: Language
) -> None:
    write(
        tmp_path,
        "health.yaml",
        GOOD
        + "terms: [self-harm, strategy meeting, allergy, Jehovah's Witness]\n"
        + "patterns:\n"
        + "  - {name: had sex, tokens: [{LOWER: {IN: [had, has]}}, {LOWER: sex}]}\n"
        + "  - {name: optional start, tokens: [{LOWER: very, OP: '?'}, {LOWER: unwell}]}\n"
        + "  - {name: anywhere, tokens: [{IS_DIGIT: true}, {LOWER: tablets}]}\n"
        + "exclude: [allergy clinic]\n",
    )
    matcher = Lexicons.load(tmp_path).compile(nlp)
    text = (
        "Self harm, two strategy meetings, allergies, a Jehovah’s Witness; they had sex; "
        "very unwell; unwell; 20 tablets; the allergy clinic."
    )
    assert [t for _, t in hits(matcher, nlp, text)] == [
        "Self harm",
        "strategy meetings",
        "allergies",
        "Jehovah’s Witness",
        "had sex",
        "very unwell",
        "unwell",
        "20 tablets",
    ]
