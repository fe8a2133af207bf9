"""The example case from `shared/spec/case-record.md`, used across the tests."""

from __future__ import annotations

from typing import Any

SPEC_EXAMPLE: dict[str, Any] = {
    "case_id": "853206",
    "aliases": ["COM0755749"],
    "status": "open",
    "parties": [
        {"party_id": "853206-P1", "role": "child", "name": "Tom Smith",
         "other_names": ["Tommy Smith"], "date_of_birth": "2012-03-03", "contact_allowed": False},
        {"party_id": "853206-P2", "role": "applicant", "name": "Jane Smith",
         "emails": ["jane.smith@example.net"],
         "postal_addresses": [{"lines": ["Flat 2", "14 Mill Lane", "Leeds"], "postcode": "LS6 2AB"}],
         "confidential": True, "withheld_from": ["853206-P3"]},
        {"party_id": "853206-P3", "role": "respondent", "name": "Mark Smith",
         "emails": ["m.smith77@example.com"],
         "postal_addresses": [{"lines": ["3 Oak Road", "Bradford"], "postcode": "BD1 4QQ"}]},
        {"party_id": "853206-P4", "role": "solicitor", "name": "Priya Shah",
         "organisation": "Shah & Co Solicitors", "represents": "853206-P2",
         "emails": ["p.shah@shahco-law.example"],
         "postal_addresses": [{"lines": ["Shah & Co Solicitors", "1 Park Row", "Leeds"],
                               "postcode": "LS1 5HN"}]},
        {"party_id": "853206-P5", "role": "social_worker", "name": "Owen Price",
         "organisation": "Leeds City Council", "emails": ["owen.price@leeds.example.gov.uk"]},
    ],
}  # fmt: skip


# A second case: the same solicitor acts in it; a confidential applicant with no list; a
# respondent with a verified address who must not be contacted directly.
OTHER_CASE: dict[str, Any] = {
    "case_id": "853999",
    "aliases": ["LS12P34567"],
    "parties": [
        {"party_id": "853999-P1", "role": "child", "name": "Amy Jones", "date_of_birth": "2015-06-01"},
        {"party_id": "853999-P2", "role": "applicant", "name": "Sarah Jones",
         "emails": ["sarah.jones@example.org"], "confidential": True,
         "postal_addresses": [{"lines": ["9 Beech Grove", "Leeds"], "postcode": "LS6 2AB"}]},
        {"party_id": "853999-P3", "role": "respondent", "name": "Dean Jones",
         "emails": ["dean.jones@example.org"], "contact_allowed": False},
        {"party_id": "853999-P4", "role": "solicitor", "name": "Priya Shah",
         "organisation": "Shah & Co Solicitors", "represents": "853999-P2",
         "emails": ["P.Shah@shahco-law.example"]},
        {"party_id": "853999-P5", "role": "social_worker", "name": "Gemma Hart",
         "organisation": "Leeds City Council", "emails": ["gemma.hart@leeds.example.gov.uk"]},
    ],
}  # fmt: skip

STAFF = [
    {
        "email": "a.jones@gatekeeper.example",
        "name": "Alice Jones",
        "roles": ["staff"],
        "team": "North",
    },
    {
        "email": "b.khan@gatekeeper.example",
        "name": "Bilal Khan",
        "roles": ["staff", "checker"],
        "team": "North",
    },
]
