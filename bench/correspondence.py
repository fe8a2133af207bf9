"""A labelled corpus of staff correspondence for the detection evaluation (`bench/evaluate.py`).

    python bench/correspondence.py --out DIR --cases N --items-per-class K --seed S

writes

    DIR/cases.jsonl            the case record (format v1), built on `gatekeeper.sample.SampleRecord`
    DIR/staff.jsonl            the staff who send the mail
    DIR/mail/<class>/<n>.eml   one message per item
    DIR/labels.jsonl           per item: file, class, expect, sender, why (+ variant, case ids, evidence)
    DIR/corpus.json            the parameters and counts, so a later run can reuse the corpus

The record is the sample record enriched with what the checks need and real
records have: teenagers with their own email address (`contact_allowed: false`),
respondents who may only be reached through their solicitor, confidential
applicants with implicit `withheld_from`, kinship carers, schools and health
visitors.

Every item is a plausible piece of a busy day: greetings, sign-offs and
paragraphs drawn from many fragments (with ordinary typos), replies quoting
earlier messages (Gmail "On ... wrote:" and Outlook "From:/Sent:"), forwards
(inline and as attached messages), plain, HTML-only and multipart/alternative
bodies, signatures with confidentiality footers, and 0-3 real PDF (reportlab)
and DOCX (python-docx) attachments. A mistake item carries exactly one kind of
mistake, made the way staff make it; a clean item carries the noise real clean
mail has. Everything is deterministic for a seed: each item draws from its own
random generator, so items do not depend on one another (and `--jobs N` writes
the same bytes as one process).

Judgement calls in the labels:

- Clean (release): a solicitor on record in several cases gets mail about any
  of them, even one mail about two of them; a confidential address goes to the
  party themself, their own solicitor or a professional; internal mail may
  discuss several families; a circular to parents of different cases is clean
  when they are all in Bcc; parents of the same case may share a To line
  unless one's address is withheld from the other.
- Clean too: a note with no personal data at all (no names, references,
  special-category content or attachments) to a new person at an organisation a
  professional party writes from. Real policy would release it: it discloses
  nothing, and holding every first contact with a partner agency would train
  staff to approve without reading.
- Not clean: case details or special-category content to anybody not in the
  record is `recipient_unknown` (hold), *including* a new social worker at a
  known council's domain or a new teacher at a known school. A council has
  thousands of staff; its domain does not show that this person is allocated
  to this family, and such a slip is exactly the misdirection the check exists
  for. An unverified address under a party's own name is `display_name_mismatch`.
- A `recipient_other_case` or `recipient_unknown` item, which can only be
  caught by knowing which case it is about, names its case the way staff do:
  a case reference (id or alias) somewhere, or a party name no other case in
  the record has. Other-case content is not made that easy: a pasted sentence
  may name only one parent of the other family, by a name several cases share.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import html
import io
import json
import multiprocessing
import random
import re
import shutil
import sys
import textwrap
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import OSA, Levenshtein

from gatekeeper.casebook import effective_withheld_from, name_key
from gatekeeper.contact import InvalidContact, email_key, normalise_email, normalise_postcode
from gatekeeper.record import PROFESSIONAL_ROLES
from gatekeeper.sample import (
    COUNCILS,
    FIRST_NAMES,
    INTERNAL_DOMAIN,
    STREETS,
    SURNAMES,
    TOWNS,
    SampleRecord,
    SampleShape,
)

CLEAN = "clean"
MISTAKE_CLASSES = (
    "recipient_other_case",
    "recipient_lookalike",
    "display_name_mismatch",
    "content_other_case",
    "attachment_other_case",
    "confidential_address_leak",
    "visible_recipients",
    "recipient_unknown",
    "contact_not_allowed",
    "unreadable_content",
)
CLASSES = (CLEAN, *MISTAKE_CLASSES)
EXPECT = {CLEAN: "release", "confidential_address_leak": "block"} | {
    c: "hold" for c in MISTAKE_CLASSES if c != "confidential_address_leak"
}
FORMAT_VERSION = 1

ORGANISATION = "Riverside Family Court Advisory Service"
ORG_SHORT = "Riverside FCAS"
# (building, street, town, postcode); a postcode a party also has is dropped when the world is built.
OFFICES = (
    ("Westgate House", "12 Wellington Street", "Leeds", "LS1 4DL"),
    ("Provincial House", "5 Market Street", "Bradford", "BD1 1NE"),
    ("Orchard Court", "2 Rockingham Lane", "Sheffield", "S1 4FW"),
    ("Tower Buildings", "40 Piccadilly", "Manchester", "M1 3BN"),
    ("Kings Wharf", "9 Castle Street", "York", "YO1 9RY"),
)
CONTACT_CENTRES = (
    ("Oakwood Child Contact Centre", "3 Station Parade", "Leeds", "LS8 3BB"),
    ("Little Acorns Contact Centre", "St John's Church Hall, Otley Road", "Bradford", "BD3 0AH"),
    ("The Meeting Place", "18 Bank Street", "Wakefield", "WF1 1EH"),
    ("Fresh Start Family Centre", "Unit 4, Calder Way", "Huddersfield", "HD1 6QT"),
    ("Hillside Contact Centre", "22 Ecclesall Road", "Sheffield", "S11 8HW"),
    ("Rainbow Family Hub", "1 Hulme Street", "Manchester", "M15 5JJ"),
)
STAFF_TITLES = (
    "Family Court Adviser", "Family Court Adviser", "Family Court Adviser",
    "Senior Family Court Adviser", "Practice Supervisor", "Business Support Officer",
    "Service Manager", "Family Court Adviser (Duty)",
)  # fmt: skip
HEARING_TYPES = (
    "FHDRA", "first hearing dispute resolution appointment", "dispute resolution appointment",
    "DRA", "final hearing", "fact-finding hearing", "directions hearing", "review hearing",
)  # fmt: skip
JUDGES = (
    "District Judge Mahmood", "District Judge Carter", "HHJ Lloyd", "Recorder Whitaker",
    "District Judge Oyelaran", "HHJ Fenwick", "Deputy District Judge Barraclough",
    "the Legal Adviser", "Magistrates",
)  # fmt: skip
CONDITIONS = (
    "his asthma", "her eczema", "recurring ear infections", "a suspected ADHD diagnosis",
    "speech and language delay", "epilepsy", "type 1 diabetes", "a heart murmur",
)  # fmt: skip
SCHOOL_NAMES = (
    "Oakfield Primary School", "St Mary's Catholic Primary School", "Highfield Academy",
    "Meadowbank Junior School", "Park Lane Primary", "Westfield Community School",
    "Holy Trinity CE Primary", "Brookside Academy", "Moorlands High School",
    "Greenhill Primary School", "Castleford Academy", "Beechwood Infant School",
)  # fmt: skip
HEALTH_ORGS = (
    ("Leeds Community Healthcare", "Health Visitor"),
    ("Bradford District Care", "School Nurse"),
    ("Sheffield Children's Hospital", "Paediatric Liaison Nurse"),
    ("South West Yorkshire Partnership", "CAMHS Practitioner"),
)
HEALTH_DOMAIN = "nhs.example"
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FEMALE_FIRST = frozenset(
    (
        "Aaliyah Aisha Alice Amara Amelia Amy Anna Ava Barbara Bethany Caitlin Caroline Chloe "
        "Claire Daisy Demi Ella Ellie Emily Emma Erin Evie Fatima Freya Grace Hannah Hayley "
        "Heather Holly Isabella Isla Jade Jane Jasmine Jennifer Jessica Joanne Julie Kayleigh "
        "Kelly Kirsty Laura Lauren Layla Leah Lily Lisa Louise Lucy Maisie Maria Megan Mia "
        "Michelle Molly Nadia Natalie Niamh Nicola Olivia Paige Phoebe Poppy Priya Rachel "
        "Rebecca Rosie Ruby Samantha Sarah Shannon Sharon Sophie Stacey Teresa Victoria Yasmin "
        "Zara Zoe"
    ).split()
)
KEYBOARD = {
    "a": "qwsz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc",
    "g": "ftyhbv", "h": "gyujnb", "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop",
    "m": "njk", "n": "bhjm", "o": "iklp", "p": "ol", "q": "wa", "r": "edft", "s": "awedxz",
    "t": "rfgy", "u": "yhji", "v": "cfgb", "w": "qase", "x": "zsdc", "y": "tghu", "z": "asx",
    "1": "2q", "2": "13w", "3": "24e", "4": "35r", "5": "46t", "6": "57y", "7": "68u",
    "8": "79i", "9": "80o", "0": "9p",
}  # fmt: skip
COMMON_TYPOS = {
    "receive": "recieve", "received": "recieved", "arrangements": "arrangments",
    "their": "thier", "tomorrow": "tommorow", "definitely": "definately", "separate": "seperate",
    "until": "untill", "which": "wich", "believe": "beleive", "appointment": "appointmnet",
    "meeting": "meeitng", "because": "becuase", "hearing": "hearign", "the": "teh", "and": "adn",
    "with": "wiht", "please": "pleaes", "would": "woudl", "information": "infomation",
    "report": "reprot", "grateful": "greatful", "concerns": "concers", "know": "konw",
    "about": "abotu", "weekend": "weeekend", "confirm": "confrim", "available": "availble",
    "school": "scholl", "necessary": "neccessary", "questions": "quesitons",
}  # fmt: skip

# -- text fragments ------------------------------------------------------------------------------
# Sentences about a case, written to a professional (third person) or to a parent (second
# person). Topics marked special carry special-category data (health, drugs, criminal, ...).

PRO_TEXT: dict[str, tuple[str, ...]] = {
    "contact": (
        "Contact between {child} and {father} is currently taking place at {centre} every {weekday} afternoon.",
        "{mother} has raised concerns that {father} was late for the last two handovers.",
        "I spoke with {father} on {date} and he would like contact to move to alternate weekends.",
        "The proposal is for {children} to spend every other weekend with {father}, from Friday after school until Sunday at 5pm.",
        "{child} told me that seeing {father_first} is fun but the Sunday handover is hard.",
        "Indirect contact by video call on Wednesdays has gone well according to both parents.",
        "{centre} has confirmed a supervised slot on {date} at {time}.",
        "Handover will take place at {centre} so that the parents do not need to meet.",
        "Sessions are at {centre}, {centre_address}, and last two hours.",
        "{mother} is willing to agree to overnight contact once the summer holidays start.",
        "The contact notes from the last three sessions are positive; {child} was relaxed and affectionate with {father_first}.",
        "{father} cancelled the session on {date} at short notice, which upset {child}.",
    ),
    "hearing": (
        "The {hearing_type} is listed at {court} on {hearing_date} at {time}, time estimate {duration}.",
        "{judge} directed that the section 7 report be filed by {date}.",
        "Please file your client's position statement no later than 48 hours before the hearing on {hearing_date}.",
        "The court has asked us to address {child}'s wishes and feelings in the report.",
        "I will attend the hearing on {hearing_date} in person; the parents may join remotely if the court agrees.",
        "The order of {date} requires the local authority to disclose its records by {date2}.",
        "Our section 7 report is due to be filed by {date}, and I expect to meet that deadline.",
        "At the last hearing {judge} made an interim child arrangements order.",
        "The final hearing has been vacated and will be relisted; I will let you know the new date.",
        "Both parents attended the {hearing_type} on {date} and the matter was adjourned for a report.",
    ),
    "admin": (
        "Could you please confirm that you have received the documents I sent on {date}?",
        "I have tried to call {mother} twice this week without success.",
        "I would be grateful if you could let me have your availability for a meeting in the week commencing {date}.",
        "Please note that I am on leave from {date} to {date2}; in my absence please contact the duty desk.",
        "I have updated our records accordingly.",
        "I will send the draft to the court once my manager has checked it.",
        "Apologies for the delay in replying to you.",
        "I have booked an interpreter for the meeting on {date}.",
        "Please use the case number in the subject line of any reply so that it reaches the right file.",
        "I will be in touch again after I have spoken with both parents.",
    ),
    "school": (
        "{school} report that {child}'s attendance this term is {attendance}%.",
        "I met {child} at {school} on {date}; {child} was relaxed and chatty.",
        "The school has no concerns about {child}'s presentation in class.",
        "The designated safeguarding lead at {school} will share the attendance records with me.",
        "{child}'s teacher says that {child} has settled well since the move to year {year_group}.",
    ),
    "health": (
        "{child} has an appointment with the paediatrician on {date} about {condition}.",
        "{mother} told me that {child} is now on medication and the inhaler needs to go to contact.",
        "The GP letter confirms that {child} is on the waiting list for an ADHD assessment.",
        "{father} has been signed off work with a back injury and is waiting for surgery.",
        "The health visitor has noted that {child} has missed two immunisation appointments.",
        "{mother} is pregnant and due in {month}.",
    ),
    "mental_health": (
        "{mother} disclosed that she has been treated for depression and anxiety since {year}.",
        "{child} has been referred to CAMHS after an episode of self-harm at school.",
        "{father} is under the care of the community mental health team and takes antidepressants.",
        "{mother} was detained under the Mental Health Act in {year} and has been well since.",
    ),
    "drugs_alcohol": (
        "The hair strand test results show {father}'s cocaine use at a low level over the last three months.",
        "{mother} has engaged with the alcohol service and her recent tests were negative.",
        "There are concerns that {father} uses cannabis daily, including when the children are in his care.",
        "{father} accepts that he was drinking heavily last year but says he has been sober since {month}.",
        "The court has directed hair strand testing for drugs and alcohol for both parents.",
    ),
    "criminal": (
        "The police disclosure shows that {father} received a caution for assault in {year}.",
        "{father} has a conviction for drink driving from {year} and is on licence until {date}.",
        "The PNC check returned no convictions for {mother}.",
        "{father} was arrested on {date} and released under investigation.",
        "The police have confirmed a non-molestation order is in place until {date2}.",
    ),
    "safeguarding": (
        "The children have been on a child protection plan under the category of emotional abuse since {date}.",
        "{mother} reported an incident of domestic abuse on {date}; the police attended.",
        "A MARAC referral was made in {month}.",
        "The local authority has completed a section 47 enquiry and the outcome is no further action.",
        "{child} disclosed to a teacher that {father} hit {child} with a belt.",
        "{sw} is concerned about neglect: the home conditions were poor on the last two visits.",
        "The safeguarding checks with the police and the local authority are now back.",
    ),
    "identity": (
        "{child}'s dual heritage (White British and Black Caribbean) should be reflected in the plan.",
        "The family are practising Muslims and {child} attends the mosque school at weekends.",
        "An interpreter for Polish will be needed for {father} at the meeting.",
        "{mother} is a Jehovah's Witness and has raised the question of blood transfusions.",
    ),
}
PARENT_TEXT: dict[str, tuple[str, ...]] = {
    "contact": (
        "I have spoken to {other_parent} and {centre} can offer {weekday} afternoons.",
        "The next contact session is booked for {date} at {time} at {centre}.",
        "The centre's address is {centre}, {centre_address}; there is parking at the back.",
        "I know the last handover was difficult for you; I have asked the centre to stagger arrival times.",
        "{child} told me that {child} is looking forward to seeing you.",
        "{other_parent} has agreed that the video calls on Wednesdays can carry on.",
        "Please let me know if you cannot make the session on {date}, as the centre charges for missed slots.",
        "I understand you would like more time with {children}; I will put your proposal to {other_parent}.",
    ),
    "hearing": (
        "As you know, the next hearing is on {hearing_date} at {time} at {court}.",
        "You will receive a copy of my report once it has been filed with the court.",
        "If you have a solicitor, please let me know their details so that I can send them a copy.",
        "The court has asked me to speak with {children} about their wishes and feelings.",
        "{judge} has asked for my report by {date}.",
        "You do not need to bring anything to the hearing except photo ID.",
    ),
    "admin": (
        "Could you let me know a day next week when I can visit you and {child} at home?",
        "Please bring photo ID with you to the appointment.",
        "I tried to ring you this morning but couldn't get through.",
        "Please could you send me the name of {child}'s GP surgery?",
        "Thank you for sending the documents so quickly.",
        "I will write to you with the date of the next meeting.",
        "I will post a copy of the letter to you at {own_address} as well.",
        "I am sorry it has taken me a few days to get back to you.",
    ),
    "school": (
        "I will visit {child} at {school} on {date}, as we discussed.",
        "{school} have said that {child} is doing well this term.",
    ),
    "health": (
        "Thank you for letting me know that {child} has been unwell; I hope {child} is feeling better.",
        "Please bring {child}'s inhaler and medication to the contact session.",
        "You mentioned that {child} has a hospital appointment on {date}; please let the centre know.",
    ),
    "mental_health": (
        "You told me that you have been struggling with your mental health; your GP can refer you to talking therapies.",
        "I know the CAMHS appointment for {child} has been hard for you to arrange.",
    ),
    "drugs_alcohol": (
        "As discussed, the court has directed hair strand testing for drugs and alcohol; your appointment is on {date} at {time}.",
        "The test results have come back and I would like to go through them with you.",
    ),
    "criminal": (
        "I have received the police disclosure and need to discuss it with you before I finish my report.",
        "The police have told me about the caution from {year}; I will need to mention it in my report.",
    ),
    "safeguarding": (
        "The local authority has told me that {child} remains on a child protection plan.",
        "If you feel unsafe at any time, please call 999.",
        "I have shared your concerns about {other_parent} with the social worker, {sw}.",
    ),
}
SPECIAL_TOPICS = frozenset(
    {"health", "mental_health", "drugs_alcohol", "criminal", "safeguarding", "identity"}
)
TOPIC_WEIGHTS = {
    "contact": 20, "hearing": 16, "admin": 18, "school": 7, "health": 4, "mental_health": 2,
    "drugs_alcohol": 3, "criminal": 2, "safeguarding": 5, "identity": 1,
}  # fmt: skip
TOPIC_SUBJECTS = {
    "contact": ("contact arrangements", "Contact", "contact this weekend", "Contact centre referral", "handover"),
    "hearing": ("hearing on {hearing_short}", "Hearing", "court date", "Section 7 report", "Position statement"),
    "admin": ("Update", "Request for information", "Documents", "Appointment", "Your call today", "Meeting"),
    "school": ("School visit", "school attendance", "Meeting at school"),
    "health": ("GP letter", "Medical appointment", "health update"),
    "mental_health": ("CAMHS referral", "Update"),
    "drugs_alcohol": ("Hair strand test", "Test results", "testing"),
    "criminal": ("Police disclosure", "Safeguarding checks"),
    "safeguarding": ("Safeguarding", "Safeguarding letter", "Child protection plan", "Concerns"),
    "identity": ("Interpreter", "Care plan"),
}  # fmt: skip

OPENERS_PRO = (
    "I hope you are well.", "Thank you for your email.", "Further to our telephone conversation this morning,",
    "Just a quick update on the above.", "Thanks for getting back to me.", "I am writing about the above case.",
    "Following the hearing last week, please see below.", "Thank you for your call earlier.", "",
)  # fmt: skip
OPENERS_PARENT = (
    "I hope you are well.", "Thank you for your message.", "Thanks for speaking to me today.",
    "I am writing to let you know what happens next.", "Thank you for your call yesterday.",
    "I hope you and {child} are keeping well.", "",
)  # fmt: skip
CLOSINGS = (
    "Please do not hesitate to contact me if you have any questions.", "Let me know if anything changes.",
    "Many thanks for your help.", "I look forward to hearing from you.", "Any questions, give me a call.",
    "Thanks in advance.", "Please call me if you would like to talk this through.", "",
)  # fmt: skip
SIGNOFFS = (
    "Kind regards,", "Kind regards", "Best wishes,", "Many thanks,", "Regards,", "Thanks,",
    "Best regards,", "Warm regards,", "Thanks", "KR",
)  # fmt: skip
FOOTERS = (
    "This email and any attachments are confidential and may be legally privileged. If you have received it in error, please tell the sender and delete it. Do not copy or forward it.",
    "CONFIDENTIALITY NOTICE: The information in this email is intended only for the named recipient(s). If you are not the intended recipient you must not read, copy, use or disclose it. Please notify the sender and delete it from your system.",
    "Riverside FCAS is committed to protecting personal data. Read our privacy notice at https://www.gatekeeper.example/privacy. Please consider the environment before printing this email.",
)  # fmt: skip
CIRCULARS = (
    ("Parenting after separation course – places available",
     "We are running a free 'Planning Together for Children' session at our {office_town} office on {date} at {time}. It is open to any parent involved with our service. If you would like a place, please reply to this email or call the duty desk on {phone}."),
    ("Office closure over the bank holiday",
     "Please note that our offices will be closed on {date}. If you need to speak to somebody urgently, please call the duty desk on {phone}. In an emergency, call 999."),
    ("Feedback on our service",
     "We would welcome your views on how we have worked with your family. The short survey takes about five minutes and your answers are anonymous: https://www.gatekeeper.example/feedback."),
    ("Changes to contact centre bookings",
     "From {date} all bookings at {centre} must be made through our office rather than with the centre directly. Please contact your Family Court Adviser if you have a session booked after that date."),
    ("New parents' information evening",
     "You are invited to an information evening about what to expect at court, on {date} at {time} at our {office_town} office. Refreshments provided; children are welcome."),
    ("Our new online portal",
     "You can now upload documents for your Family Court Adviser through our secure portal at https://portal.gatekeeper.example. Please do not send documents by WhatsApp or text message."),
)  # fmt: skip
NEW_PROFESSIONAL_NOTES = (
    ("Your call this morning",
     "Thanks for your call this morning. As discussed, referrals to us come through the court, so I cannot take one directly, but the duty desk is happy to talk anything through on {phone}."),
    ("Training session on {date_short}",
     "Thank you for booking onto the multi-agency training session on {date}. It starts at {time} at our {office_town} office; parking is limited, so public transport is best."),
    ("Duty desk number",
     "As promised, our duty desk number is {phone} and it is staffed Monday to Friday, 9am to 5pm. Referrals and court papers should go through the secure portal."),
    ("Introductions",
     "Lovely to meet you at the network meeting yesterday. I'm the practice supervisor for the {team} team, so please get in touch if your team ever needs a general steer on our process."),
)  # fmt: skip

PARENT_MESSAGES = (
    "hi {staff_first} just wanted to let you know {child} has been poorly this week so might not make contact on {weekday}. thanks",
    "Hiya, can you ring me when you get a chance its about the court date. I cant make the {hearing_date_short} because of work",
    "Hello, I have not heard anything since the meeting and I am worried about {child}. {other_first} is still not replying to my messages. Please can someone call me",
    "Dear {staff_name}, thank you for your letter. I can confirm I can attend on {date}. Regards {self_full}",
    "Hi, {child} came back from contact really upset on Sunday and wouldnt say why. I dont think the weekend arrangement is working. Can we talk",
    "hello {staff_first}. I have sent the documents you asked for to the court. Do you need copies as well? thanks {self_first}",
    "Hi there, is the meeting on {weekday} still going ahead? I need to sort out childcare for {child}",
)  # fmt: skip
TEEN_MESSAGES = (
    "hi its {self_first}. can you tell the judge i dont want to go to {parent_word}s every weekend. i want to see my friends on saturdays",
    "hello, my mum said i could email you. I want to know what is happening with court because nobody tells me anything",
    "Hi {staff_first}, I wanted to say that I am ok with staying at {parent_word}s on Fridays but not the whole weekend. {self_first}",
)  # fmt: skip
SOLICITOR_MESSAGES = (
    "We act for {client} in the above matter. Please could you confirm when the section 7 report is likely to be filed?",
    "Further to the hearing on {date}, we enclose our client's position statement for your information.",
    "Our client has asked us to raise concerns about the handover arrangements at {centre}. We should be grateful for your comments.",
    "We write to confirm that our client consents to the hair strand testing directed by the court.",
    "Please could you let us know whether you have spoken with {child} yet, as our client is anxious about the timetable.",
)  # fmt: skip
PROFESSIONAL_MESSAGES = (
    "Just a quick update: I visited {child} at home on {date} and the home conditions were much improved.",
    "I have attached the latest core group minutes. The next review conference is on {date2}.",
    "Can we have a quick chat about {child} before the hearing? I have some concerns about the last two contact sessions.",
    "The school have been in touch about {child}'s attendance again; it is down to {attendance}% this term.",
    "I can confirm that the strategy meeting concluded that no further action is needed at this stage.",
)  # fmt: skip

# -- the record ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    """One party of one case, with the effective withheld-from set already worked out."""

    party_id: str
    case_id: str
    role: str
    name: str
    other_names: tuple[str, ...]
    emails: tuple[str, ...]
    postal: tuple[tuple[tuple[str, ...], str], ...]
    organisation: str | None
    represents: str | None
    confidential: bool
    withheld_from: frozenset[str]
    contact_allowed: bool
    date_of_birth: str | None

    @property
    def first(self) -> str:
        return self.name.split()[0]

    @property
    def surname(self) -> str:
        return self.name.split()[-1]

    @property
    def email(self) -> str:
        return self.emails[0] if self.emails else ""

    @property
    def reachable(self) -> bool:
        """Has a verified address and may be written to directly."""
        return bool(self.emails) and self.contact_allowed

    @property
    def professional(self) -> bool:
        return self.role in PROFESSIONAL_ROLES or self.role == "solicitor"

    @property
    def parental(self) -> bool:
        return self.role in ("applicant", "respondent", "parent", "carer")

    @property
    def title(self) -> str:
        if self.professional or self.role == "child":
            return ""
        # The sample record's applicant is the mother and its respondent the father.
        if self.role == "applicant" or (self.role != "respondent" and self.first in FEMALE_FIRST):
            return ("Ms", "Mrs", "Miss", "Ms")[len(self.name) % 4]
        return "Mr"

    @property
    def formal(self) -> str:
        return f"{self.title} {self.surname}" if self.title else self.name


@dataclass(frozen=True)
class Staff:
    email: str
    name: str
    roles: tuple[str, ...]
    team: str
    title: str
    phone: str
    office: tuple[str, str, str, str]

    @property
    def first(self) -> str:
        return self.name.split()[0]


@dataclass
class Case:
    case_id: str
    aliases: tuple[str, ...]
    status: str
    parties: list[Party]
    staff: Staff
    court: str
    judge: str
    centre: tuple[str, str, str, str]
    school: str

    def by_role(self, *roles: str) -> list[Party]:
        return [p for p in self.parties if p.role in roles]

    @property
    def children(self) -> list[Party]:
        return self.by_role("child")

    @property
    def mother(self) -> Party:
        return self.by_role("applicant")[0]

    @property
    def father(self) -> Party:
        return self.by_role("respondent")[0]

    @property
    def surname(self) -> str:
        return self.children[0].surname

    @property
    def references(self) -> tuple[str, ...]:
        return (self.case_id, *self.aliases)

    def party(self, party_id: str) -> Party:
        return next(p for p in self.parties if p.party_id == party_id)

    def solicitor_for(self, party: Party) -> Party | None:
        return next((p for p in self.by_role("solicitor") if p.represents == party.party_id), None)

    def reachable(self, *roles: str) -> list[Party]:
        return [p for p in self.parties if p.reachable and (not roles or p.role in roles)]

    def emails(self) -> set[str]:
        return {email_key(e) for p in self.parties for e in p.emails}

    def names(self) -> set[str]:
        return {name_key(n) for p in self.parties for n in (p.name, *p.other_names)}


def _teen_email(rng: random.Random, first: str, last: str, year: str) -> str:
    local = rng.choice(
        (
            f"{first}.{last}{year[2:]}",
            f"{first}{last[0]}{year}",
            f"{first}_{last}",
            f"x{first}x{year[2:]}",
        )
    )
    return f"{local.lower()}@{rng.choice(('inbox.example', 'mailbox.example', 'example.com'))}"


def _school_party(rng: random.Random, party_id: str, school: str) -> dict[str, Any]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    domain = "-".join(school.lower().replace("'", "").split()[:2]) + ".example.sch.uk"
    local = rng.choice(("safeguarding", "dsl", "office", f"{first[0]}.{last}".lower()))
    return {
        "party_id": party_id,
        "role": "school",
        "name": f"{first} {last}",
        "organisation": school,
        "emails": [f"{local}@{domain}"],
    }


def enrich_case(case: dict[str, Any], rng: random.Random, school: str) -> None:
    """Add to a sample case what real records have and the checks need (see module docstring)."""
    parties: list[dict[str, Any]] = case["parties"]
    case_id = case["case_id"]

    def next_id() -> str:
        return f"{case_id}-P{len(parties) + 1}"

    for child in (p for p in parties if p["role"] == "child"):
        year = child["date_of_birth"][:4]
        if int(year) <= 2012 and rng.random() < 0.5:  # a teenager with a phone
            first, last = child["name"].split()[0], child["name"].split()[-1]
            child["emails"] = [_teen_email(rng, first, last, year)]
    applicant = next(p for p in parties if p["role"] == "applicant")
    respondent = next(p for p in parties if p["role"] == "respondent")
    if rng.random() < 0.07:  # a non-molestation order: through his solicitor only
        respondent["contact_allowed"] = False
    if not applicant.get("confidential") and rng.random() < 0.08:
        applicant["confidential"] = True
        applicant["withheld_from"] = [respondent["party_id"]]
    if applicant.get("confidential") and rng.random() < 0.4:
        del applicant["withheld_from"]  # the spec's default: every non-professional party
    if rng.random() < 0.08:  # a grandparent caring for the children
        first, last = rng.choice(FIRST_NAMES), respondent["name"].split()[-1]
        town, prefix, districts = rng.choice(TOWNS)
        parties.append(
            {
                "party_id": next_id(),
                "role": "carer",
                "name": f"{first} {last}",
                "emails": [f"{first.lower()}{last.lower()}{rng.randint(50, 79)}@homemail.example"],
                "postal_addresses": [
                    {
                        "lines": [f"{rng.randint(1, 99)} {rng.choice(STREETS)}", town],
                        "postcode": f"{prefix}{rng.randint(1, districts)} {rng.randint(1, 9)}"
                        f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}",
                    }
                ],
            }
        )
    if rng.random() < 0.3:
        parties.append(_school_party(rng, next_id(), school))
    if rng.random() < 0.12:
        organisation, job = rng.choice(HEALTH_ORGS)
        first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
        parties.append(
            {
                "party_id": next_id(),
                "role": "health",
                "name": f"{first} {last}",
                "organisation": f"{organisation} ({job})",
                "emails": [f"{first.lower()}.{last.lower()}{rng.randint(1, 9)}@{HEALTH_DOMAIN}"],
            }
        )


def _party_of(raw: dict[str, Any], case: dict[str, Any]) -> Party:
    members = [(p["party_id"], p["role"], p.get("represents")) for p in case["parties"]]
    return Party(
        party_id=raw["party_id"],
        case_id=case["case_id"],
        role=raw["role"],
        name=raw["name"],
        other_names=tuple(raw.get("other_names", ())),
        emails=tuple(raw.get("emails", ())),
        postal=tuple(
            (tuple(a["lines"]), normalise_postcode(a["postcode"]))
            for a in raw.get("postal_addresses", ())
        ),
        organisation=raw.get("organisation"),
        represents=raw.get("represents"),
        confidential=bool(raw.get("confidential")),
        withheld_from=effective_withheld_from(
            raw["party_id"], bool(raw.get("confidential")), raw.get("withheld_from", ()), members
        ),
        contact_allowed=raw.get("contact_allowed", True),
        date_of_birth=raw.get("date_of_birth"),
    )


class World:
    """The case record, the staff and the indexes the item builders choose from."""

    def __init__(self, seed: int, n_cases: int, n_staff: int | None = None) -> None:
        sample = SampleRecord(seed=seed, shape=SampleShape())
        rng = random.Random(f"{seed}:record")
        self.case_dicts = [sample.case(number) for number in range(n_cases)]
        for raw in self.case_dicts:
            enrich_case(raw, rng, rng.choice(SCHOOL_NAMES))
        n_staff = n_staff or max(12, min(150, n_cases // 20))
        self.staff_dicts = list(sample.staff(n_staff))
        self.postcodes = {
            pc for raw in self.case_dicts for p in raw["parties"] for pc in _postcodes(p)
        }
        self.offices = [o for o in OFFICES if o[3] not in self.postcodes] or [OFFICES[0]]
        self.centres = [c for c in CONTACT_CENTRES if c[3] not in self.postcodes]
        self.staff = [self._staff(raw, rng) for raw in self.staff_dicts]
        self.staff_names = {name_key(s.name) for s in self.staff}
        senders = [s for s in self.staff if "staff" in s.roles]
        self.senders = senders
        self.cases = [self._case(raw, rng, senders) for raw in self.case_dicts]
        self.by_id = {c.case_id: c for c in self.cases}
        self.by_email: dict[str, list[Party]] = defaultdict(list)
        for case in self.cases:
            for party in case.parties:
                for address in party.emails:
                    self.by_email[email_key(address)].append(party)
        self.addresses = sorted(self.by_email)
        self.caseload: dict[str, list[Case]] = defaultdict(list)
        for case in self.cases:
            self.caseload[case.staff.email].append(case)
        self.cases_of_name: dict[str, set[str]] = defaultdict(set)
        for case in self.cases:
            for key in case.names():
                self.cases_of_name[key].add(case.case_id)
        self._autocomplete = _AutocompleteIndex(
            [p for c in self.cases for p in c.parties if p.reachable]
        )

    def _staff(self, raw: dict[str, Any], rng: random.Random) -> Staff:
        title = "Governance Officer" if "governance" in raw["roles"] else rng.choice(STAFF_TITLES)
        return Staff(
            email=raw["email"],
            name=raw["name"],
            roles=tuple(raw["roles"]),
            team=raw["team"],
            title=title,
            phone=f"0113 496 0{rng.randint(100, 999)}",
            office=rng.choice(self.offices),
        )

    def _case(self, raw: dict[str, Any], rng: random.Random, senders: list[Staff]) -> Case:
        parties = [_party_of(p, raw) for p in raw["parties"]]
        town = next((p.postal[0][0][-1] for p in parties if p.postal), "Leeds")
        school = next(
            (p.organisation for p in parties if p.role == "school" and p.organisation), None
        )
        return Case(
            case_id=raw["case_id"],
            aliases=tuple(raw.get("aliases", ())),
            status=raw.get("status", "open"),
            parties=parties,
            staff=rng.choice(senders),
            court=rng.choice(
                (
                    f"{town} Family Court",
                    f"{town} Combined Court Centre",
                    f"the Family Court at {town}",
                )
            ),
            judge=rng.choice(JUDGES),
            centre=rng.choice(self.centres or [CONTACT_CENTRES[0]]),
            school=school or rng.choice(SCHOOL_NAMES),
        )

    def case_lines(self) -> list[str]:
        return [json.dumps(raw, ensure_ascii=False) for raw in self.case_dicts]

    def staff_lines(self) -> list[str]:
        return [json.dumps(raw) for raw in self.staff_dicts]

    def owners(self, address: str) -> list[Party]:
        return self.by_email.get(email_key(address), [])

    def near_verified(self, address: str, edits: int = 2) -> str | None:
        """A verified address within `edits` edits of `address` (letter case ignored), if any."""
        found = process.extractOne(
            email_key(address), self.addresses, scorer=Levenshtein.distance, score_cutoff=edits
        )
        return found[0] if found else None

    def pick_case(self, rng: random.Random, accept: Callable[[Case], bool]) -> Case:
        for _ in range(4000):
            case = rng.choice(self.cases)
            if accept(case):
                return case
        raise NoCandidate("no case in the record fits; generate more cases")

    def autocomplete(self, rng: random.Random, intended: Party, case: Case) -> tuple[Party, str]:
        return self._autocomplete.pick(rng, intended, case)

    def teammates(self, staff: Staff) -> list[Staff]:
        return [s for s in self.staff if s.team == staff.team and s.email != staff.email]


def _postcodes(party: dict[str, Any]) -> list[str]:
    return [normalise_postcode(a["postcode"]) for a in party.get("postal_addresses", ())]


class NoCandidate(Exception):
    """The record has nothing that fits this item; the builder tries another way."""


class _AutocompleteIndex:
    """Who a mail client's autocomplete offers when staff start typing a name."""

    def __init__(self, parties: list[Party]) -> None:
        self.by_name: dict[str, list[Party]] = defaultdict(list)
        self.by_first: dict[str, list[Party]] = defaultdict(list)
        self.by_surname: dict[str, list[Party]] = defaultdict(list)
        self.by_local: dict[str, list[Party]] = defaultdict(list)
        for party in parties:
            self.by_name[name_key(party.name)].append(party)
            self.by_first[party.first.lower()].append(party)
            self.by_surname[party.surname.lower()].append(party)
            self.by_local[email_key(party.email)[:4]].append(party)

    def pick(self, rng: random.Random, intended: Party, case: Case) -> tuple[Party, str]:
        """A party of another case that autocomplete could have offered instead of `intended`."""
        taken = case.emails()
        names = case.names()
        first, surname = intended.first.lower(), intended.surname.lower()
        tiers: list[tuple[str, list[Party]]] = [
            ("the same name", self.by_name[name_key(intended.name)]),
            (
                "the same first name and a similar surname",
                [p for p in self.by_first[first] if p.surname.lower()[:2] == surname[:2]],
            ),
            (
                "the same surname and a similar first name",
                [p for p in self.by_surname[surname] if p.first.lower()[:1] == first[:1]],
            ),
            ("an address starting the same way", self.by_local[email_key(intended.email)[:4]]),
            ("the same first name", self.by_first[first]),
            ("the same surname", self.by_surname[surname]),
        ]
        want_professional = intended.professional
        for how, pool in tiers:
            options = [
                p
                for p in pool
                if p.case_id != case.case_id
                and email_key(p.email) not in taken
                and p.professional == want_professional
                and not (name_key(p.name) in names and how != "the same name")
            ]
            if options and (rng.random() < 0.75 or how == tiers[-1][0]):
                return rng.choice(options), how
        raise NoCandidate(f"nobody like {intended.name} in another case")


# -- writing text ----------------------------------------------------------------------------------


def add_typos(rng: random.Random, template: str, rate: float) -> str:
    """Misspell an ordinary word now and then (never inside a {placeholder})."""
    if rng.random() >= rate:
        return template
    pieces = re.split(r"(\{[^}]*\})", template)
    words = [
        (i, m)
        for i, piece in enumerate(pieces)
        if not piece.startswith("{")
        for m in re.finditer(r"[a-z]{3,}", piece)
    ]
    if not words:
        return template
    index, match = rng.choice(words)
    word = match.group(0)
    if word in COMMON_TYPOS:
        wrong = COMMON_TYPOS[word]
    elif len(word) > 4:
        k = rng.randrange(1, len(word) - 2)
        wrong = word[:k] + word[k + 1] + word[k] + word[k + 2 :]
    else:
        return template
    piece = pieces[index]
    pieces[index] = piece[: match.start()] + wrong + piece[match.end() :]
    return "".join(pieces)


def _date_text(rng: random.Random, day: dt.date) -> str:
    style = rng.randrange(5)
    if style == 0:
        return day.strftime("%d/%m/%Y")
    if style == 1:
        return f"{WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]}"
    if style == 2:
        return f"{day.day} {MONTHS[day.month - 1]} {day.year}"
    if style == 3:
        return f"{day.day}{_ordinal(day.day)} {MONTHS[day.month - 1][:3]}"
    return f"{day.day} {MONTHS[day.month - 1]}"


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _time_text(rng: random.Random) -> str:
    hour, minute = (
        rng.choice((9, 10, 10, 11, 12, 13, 14, 14, 15, 16)),
        rng.choice((0, 0, 15, 30, 45)),
    )
    style = rng.randrange(3)
    if style == 0:
        return f"{hour}:{minute:02d}"
    suffix = "am" if hour < 12 else "pm"
    shown = hour if hour <= 12 else hour - 12
    return f"{shown}{suffix}" if minute == 0 and style == 1 else f"{shown}.{minute:02d}{suffix}"


def join_names(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


@dataclass
class Voice:
    """How one message refers to the case's people: its facts, and whom it is written to."""

    case: Case
    sender: Staff
    day: dt.date
    facts: dict[str, str]
    mode: str  # "professional", "parent" or "teen"
    reader: Party | None  # the parent (or teenager) written to, in those modes


def voice_for(
    rng: random.Random,
    case: Case,
    sender: Staff,
    day: dt.date,
    reader: Party | None = None,
    *,
    full_names: bool | None = None,
    child: Party | None = None,
) -> Voice:
    """Facts and name forms for one message. `reader`: a parent or teenager written to directly."""
    children = case.children
    child = child or rng.choice(children)
    nickname = next((n.split()[0] for n in child.other_names), None)
    child_word = nickname if nickname and rng.random() < 0.35 else child.first
    full = rng.random() < 0.5 if full_names is None else full_names
    mother, father = case.mother, case.father

    def refer(p: Party) -> str:
        if full:
            return rng.choice((p.name, f"{p.title} {p.name}".strip(), p.name))
        return rng.choice(
            (p.formal, p.formal, p.first, f"the {'mother' if p is mother else 'father'}")
        )

    hearing = day + dt.timedelta(days=rng.randint(5, 80))
    mode = "professional"
    if reader is not None:
        mode = "teen" if reader.role == "child" else "parent"
    other = father if reader is mother else mother
    sw = next(iter(case.by_role("social_worker")), None)
    facts = {
        "child": child_word,
        "child_full": child.name,
        "child_dob": _date_text(rng, dt.date.fromisoformat(child.date_of_birth or "2015-01-01")),
        "children": join_names([c.first for c in children]),
        "children_full": join_names([c.name for c in children]),
        "mother": refer(mother),
        "father": refer(father),
        "mother_full": mother.name,
        "father_full": father.name,
        "mother_first": mother.first,
        "father_first": father.first,
        "other_parent": other.formal if rng.random() < 0.6 else other.first,
        "other_first": other.first,
        "parent_word": rng.choice(("dad", "mum")),
        "court": case.court,
        "judge": case.judge,
        "hearing_type": rng.choice(HEARING_TYPES),
        "hearing_date": _date_text(rng, hearing),
        "hearing_date_short": f"{hearing.day}{_ordinal(hearing.day)}",
        "hearing_short": f"{hearing.day} {MONTHS[hearing.month - 1][:3]}",
        "time": _time_text(rng),
        "duration": rng.choice(("1 hour", "2 hours", "half a day", "1 day", "3 days")),
        "date": _date_text(rng, day + dt.timedelta(days=rng.randint(-20, 30))),
        "date2": _date_text(rng, day + dt.timedelta(days=rng.randint(31, 90))),
        "date_short": f"{(day + dt.timedelta(days=12)).day} {MONTHS[(day + dt.timedelta(days=12)).month - 1][:3]}",
        "weekday": rng.choice(WEEKDAYS[:6]),
        "month": rng.choice(MONTHS),
        "year": str(rng.randint(2014, 2024)),
        "year_group": str(rng.randint(1, 10)),
        "centre": case.centre[0],
        "centre_address": f"{case.centre[1]}, {case.centre[2]} {case.centre[3]}",
        "own_address": ", ".join((*reader.postal[0][0], reader.postal[0][1]))
        if reader is not None and reader.postal
        else "your home address",
        "school": case.school,
        "attendance": str(rng.randint(71, 99)),
        "condition": rng.choice(CONDITIONS),
        "sw": sw.name if sw else "the social worker",
        "staff_first": sender.first,
        "staff_name": sender.name,
        "phone": sender.phone,
        "office_town": sender.office[2],
        "team": sender.team,
    }
    return Voice(case, sender, day, facts, mode, reader)


def sentences(rng: random.Random, voice: Voice, topic: str, count: int) -> list[str]:
    pool = (PARENT_TEXT if voice.mode != "professional" else PRO_TEXT).get(topic) or PRO_TEXT[topic]
    picked = rng.sample(pool, min(count, len(pool)))
    return [add_typos(rng, s, 0.08).format(**voice.facts) for s in picked]


def choose_topics(rng: random.Random, count: int, sensitive: bool | None) -> list[str]:
    topics = list(TOPIC_WEIGHTS)
    weights = list(TOPIC_WEIGHTS.values())
    if sensitive is False:
        weights = [0 if t in SPECIAL_TOPICS else w for t, w in zip(topics, weights, strict=True)]
    chosen: list[str] = []
    while len(chosen) < count:
        topic = rng.choices(topics, weights)[0]
        if topic not in chosen:
            chosen.append(topic)
    if sensitive and not SPECIAL_TOPICS & set(chosen):
        chosen[-1] = rng.choice(sorted(SPECIAL_TOPICS - {"identity"}))
    return chosen


def case_paragraphs(
    rng: random.Random, voice: Voice, sensitive: bool | None = None, count: int | None = None
) -> tuple[list[str], list[str]]:
    """1-3 paragraphs about the case, and their topics (the first one names the subject)."""
    if sensitive is None:
        sensitive = True if rng.random() < 0.35 else None
    topics = choose_topics(rng, count or rng.choice((1, 1, 2, 2, 2, 3)), sensitive)
    paragraphs = [" ".join(sentences(rng, voice, t, rng.randint(1, 3))) for t in topics]
    return paragraphs, topics


def mention_of_case(rng: random.Random, voice: Voice, must: bool = False) -> str | None:
    """A line naming the case the way staff do in a body, if they do."""
    if not must and rng.random() < 0.7:
        return None
    case = voice.case
    ref = rng.choice(case.references)
    return rng.choice(
        (
            f"Our ref: {ref}",
            f"Case number: {ref}",
            f"Re: {voice.facts['children_full']} ({ref})",
            f"Re: {case.surname} – {ref}",
            f"Court ref: {case.aliases[-1]}",
        )
    )


def subject_for(
    rng: random.Random, case: Case, topic: str, facts: dict[str, str], with_ref: bool | None = None
) -> str:
    """What staff type into the subject line: a topic, often with the family name or a reference."""
    what = rng.choice(TOPIC_SUBJECTS[topic]).format(**facts)
    ref = rng.choice(case.references)
    if with_ref is None:
        with_ref = rng.random() < 0.55
    child = case.children[0]
    if with_ref:
        return rng.choice(
            (
                f"{case.surname} {ref} – {what}",
                f"{ref} - {what}",
                f"[{ref}] {what}",
                f"Case {ref}: {what}",
                f"{what} - {case.surname} ({ref})",
                f"{ref} {child.name}",
                f"Our ref {ref} / {what}",
            )
        )
    return rng.choice(
        (
            what,
            f"{case.surname} family - {what}",
            f"{child.name} - {what}",
            what[:1].upper() + what[1:],
            f"{child.first} {child.surname[0]}. – {what}",
            f"{what} ({case.surname})",
        )
    )


# -- documents ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes
    about: str | None  # the case the document is about, None for generic ones
    problem: str | None = None  # why it cannot be read, for unreadable ones


def pdf_bytes(
    title: str,
    header: Sequence[str],
    paragraphs: Sequence[str],
    address_block: Sequence[str] = (),
    *,
    password: str | None = None,
) -> bytes:
    from reportlab.lib import pdfencrypt
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    encrypt = pdfencrypt.StandardEncryption(password, canPrint=0) if password else None
    doc = SimpleDocTemplate(buffer, invariant=1, encrypt=encrypt, title=title, author=ORGANISATION)
    flow: list[Any] = [Paragraph(html.escape(ORGANISATION), styles["Normal"]), Spacer(1, 12)]
    for line in address_block:
        flow.append(Paragraph(html.escape(line), styles["Normal"]))
    if address_block:
        flow.append(Spacer(1, 12))
    flow.append(Paragraph(html.escape(title), styles["Title"]))
    for line in header:
        flow.append(Paragraph(f"<b>{html.escape(line)}</b>", styles["Normal"]))
    flow.append(Spacer(1, 12))
    for text in paragraphs:
        flow.append(Paragraph(html.escape(text), styles["BodyText"]))
    doc.build(flow)
    return buffer.getvalue()


def _fixed_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed timestamps, so a DOCX is byte-for-byte the same for a seed."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2025, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def docx_bytes(
    title: str, header: Sequence[str], paragraphs: Sequence[str], address_block: Sequence[str] = ()
) -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.author = ORGANISATION
    document.core_properties.created = dt.datetime(2025, 1, 1)
    document.core_properties.modified = dt.datetime(2025, 1, 1)
    document.core_properties.last_modified_by = ORGANISATION
    document.core_properties.revision = 1
    if address_block:
        document.add_paragraph("\n".join(address_block))
    document.add_heading(title, level=1)
    if header:
        table = document.add_table(rows=0, cols=1)
        for line in header:
            table.add_row().cells[0].text = line
    for text in paragraphs:
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return _fixed_zip(buffer.getvalue())


def scanned_pdf_bytes(rng: random.Random, lines: Sequence[str]) -> bytes:
    """A PDF holding only a picture of a page: what a scanner produces, no text layer."""
    from PIL import Image, ImageDraw, ImageFilter
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    image = Image.new("L", (620, 877), 236 + rng.randrange(12))
    draw = ImageDraw.Draw(image)
    y = 60
    for line in lines:
        draw.text((50 + rng.randrange(4), y), line, fill=rng.randrange(20, 60))
        y += 18 + rng.randrange(3)
    for _ in range(400):  # scanner speckle
        x, y = rng.randrange(620), rng.randrange(877)
        draw.point((x, y), fill=rng.randrange(100, 200))
    image = image.rotate(rng.uniform(-1.2, 1.2), fillcolor=240).filter(ImageFilter.SMOOTH)
    png = io.BytesIO()
    image.save(png, format="PNG")
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    page.drawImage(ImageReader(io.BytesIO(png.getvalue())), 0, 0, width=A4[0], height=A4[1])
    page.showPage()
    page.save()
    return buffer.getvalue()


def photo_bytes(rng: random.Random, lines: Sequence[str], kind: str) -> bytes:
    """A phone photo of a paper document (JPEG) or a screenshot (PNG)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (480, 640), (200 + rng.randrange(40), 190 + rng.randrange(40), 170))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, 440, 600), fill=(245, 245, 240))
    for i, line in enumerate(lines[:25]):
        draw.text((60, 60 + 20 * i), line, fill=(30, 30, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if kind == "jpeg" else "PNG", quality=80)
    return buffer.getvalue()


def corrupt(rng: random.Random, data: bytes) -> bytes:
    """A DOCX broken the ways files do break: cut short in transfer, or overwritten in the middle."""
    if rng.random() < 0.5:
        return data[: len(data) * rng.randint(30, 70) // 100]
    start = len(data) // 3
    return (
        data[:start] + bytes(rng.randrange(256) for _ in range(len(data) // 3)) + data[2 * start :]
    )


DOCUMENT_KINDS = (
    "Section 7 report", "Safeguarding letter", "Contact notes", "Position statement",
    "Chronology", "Case summary", "Minutes of meeting", "Wishes and feelings", "Directions order",
    "Hair strand test results", "School report", "Letter",
)  # fmt: skip


def document_for(
    rng: random.Random,
    case: Case,
    voice: Voice,
    *,
    kind: str | None = None,
    with_reference: bool | None = None,
    addressee: Party | None = None,
    fmt: str | None = None,
    filename_case: Case | None = None,
) -> tuple[Attachment, list[str]]:
    """A report, or a letter to `addressee`, about `case` (PDF or DOCX); and the identifying strings in it.

    `filename_case`: the case the file name speaks of, when it is not the content's own
    (a template saved over and not renamed).
    """
    kind = "Letter" if addressee is not None else kind or rng.choice(DOCUMENT_KINDS[:-1])
    ref = rng.choice(case.references)
    with_reference = rng.random() < 0.75 if with_reference is None else with_reference
    header: list[str] = []
    evidence: list[str] = []
    if with_reference:
        header.append(
            rng.choice((f"Case number: {ref}", f"Our reference: {ref}", f"Court ref: {ref}"))
        )
        evidence.append(ref)
    for child in case.children:
        born = dt.date.fromisoformat(child.date_of_birth or "2015-01-01")
        header.append(f"Child: {child.name} (born {_date_text(rng, born)})")
        evidence.append(child.name)
    if kind not in ("Letter", "School report", "Hair strand test results"):
        header += [f"Applicant: {case.mother.name}", f"Respondent: {case.father.name}"]
        evidence += [case.mother.name, case.father.name]
    block: list[str] = []
    title = kind
    if addressee is not None:
        letter_voice = voice_for(
            rng, case, voice.sender, voice.day, addressee if addressee.parental else None
        )
        paragraphs, _ = case_paragraphs(rng, letter_voice, count=rng.randint(2, 3))
        title = rng.choice(
            ("Re: your child arrangements case", f"Re: {case.children[0].name}", "Letter")
        )
        lines, postcode = addressee.postal[0] if addressee.postal else ((), "")
        block = [
            line
            for line in (f"{addressee.title} {addressee.name}".strip(), *lines, postcode)
            if line
        ]
        paragraphs = [
            f"Dear {addressee.formal},",
            *paragraphs,
            "Yours sincerely,",
            voice.sender.name,
        ]
    else:
        report_voice = replace(voice, mode="professional", reader=None)
        paragraphs, _ = case_paragraphs(rng, report_voice, sensitive=True, count=rng.randint(2, 4))
    fmt = fmt or rng.choice(("pdf", "pdf", "docx"))
    named = filename_case or case
    stamp = (voice.day - dt.timedelta(days=rng.randint(0, 10))).strftime(
        rng.choice(("%d.%m.%y", "%Y%m%d", "%d %b"))
    )
    names = [
        f"{kind} - {named.surname} {named.case_id}",
        f"{named.case_id}_{kind.replace(' ', '_')}_v{rng.randint(1, 4)}",
        f"{named.surname}_{kind.replace(' ', '')}_FINAL",
        f"{kind} ({named.surname})",
    ]
    if filename_case is None:
        names += [f"{kind} {stamp}", kind]
    filename = rng.choice(names)
    if addressee is not None:
        filename = rng.choice(
            (
                f"Letter to {addressee.formal} {stamp}",
                f"letter {addressee.surname.lower()} {stamp}",
                "Letter",
            )
        )
    if fmt == "pdf":
        data = pdf_bytes(title, header, paragraphs, block)
        ctype = "application/pdf"
    else:
        data = docx_bytes(title, header, paragraphs, block)
        ctype = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    return Attachment(f"{filename}.{fmt}", ctype, data, case.case_id), evidence


def attachments_for(rng: random.Random, case: Case, voice: Voice, count: int) -> list[Attachment]:
    """`count` documents about the case; letters only to the parent being written to."""
    out: list[Attachment] = []
    for kind in rng.sample(DOCUMENT_KINDS[:-1], count):
        if voice.reader is not None and voice.reader.postal and rng.random() < 0.3:
            document, _ = document_for(rng, case, voice, addressee=voice.reader)
        else:
            document, _ = document_for(rng, case, voice, kind=kind)
        if document.filename in {a.filename for a in out}:
            stem, _, ext = document.filename.rpartition(".")
            document = replace(document, filename=f"{stem} (1).{ext}")
        out.append(document)
    return out


def attachment_count(rng: random.Random) -> int:
    return rng.choices((0, 1, 2, 3), (50, 30, 13, 7))[0]


# -- messages ------------------------------------------------------------------------------------


@dataclass
class Body:
    greeting: str
    paragraphs: list[str]
    signoff: str
    signature: list[str]
    footer: str = ""


@dataclass
class Quote:
    """An earlier message quoted in a reply or forward."""

    style: str  # "gmail_reply", "outlook_reply", "gmail_forward", "outlook_forward"
    author: Address
    to: list[Address]
    cc: list[Address]
    when: dt.datetime
    subject: str
    body: Body
    inner: Quote | None = None


@dataclass
class Draft:
    sender: Staff
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    subject: str
    body: Body
    when: dt.datetime
    fmt: str  # "plain", "alternative", "html"
    quote: Quote | None = None
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: EmailMessage | None = None  # a message forwarded as an attachment
    to_header: str | None = None  # e.g. "undisclosed-recipients:;"
    message_id: str = ""
    in_reply_to: str | None = None
    mailer: str | None = None


def address_of(
    rng: random.Random, party: Party, *, display: str | None = None, address: str | None = None
) -> Address:
    """How a party appears in To/Cc: the saved contact's name, in one of its usual forms."""
    if display is None:
        style = rng.randrange(12)
        if style < 6:
            display = party.name
        elif style == 6:
            display = f"{party.surname}, {party.first}"
        elif style == 7:
            display = (
                f"{party.name} ({party.organisation})" if party.organisation else party.name.upper()
            )
        elif style == 8:
            display = f"{party.title} {party.name}".strip()
        elif style == 9:
            display = party.name.lower()
        else:
            display = ""
    return Address(display_name=display, addr_spec=address or party.email)


def staff_address(rng: random.Random, staff: Staff) -> Address:
    first, last = staff.name.split()[0], staff.name.split()[-1]
    return Address(
        display_name=rng.choice((staff.name, f"{last}, {first}", staff.name)), addr_spec=staff.email
    )


def signature(rng: random.Random, staff: Staff, *, mobile: bool = False) -> tuple[list[str], str]:
    """The staff member's sign-off block and the organisation's footer (sometimes none)."""
    if mobile:
        return [
            staff.first,
            "",
            rng.choice(
                ("Sent from my iPhone", "Sent from Outlook for iOS", "Get Outlook for Android")
            ),
        ], ""
    building, street, town, postcode = staff.office
    style = rng.randrange(4)
    lines = [staff.name]
    if style == 0:
        lines += [
            f"{staff.title} | {staff.team} Team",
            ORGANISATION,
            f"{building}, {street}, {town} {postcode}",
            f"Tel: {staff.phone} | Mob: 07700 900{rng.randint(100, 999)}",
            staff.email,
        ]
    elif style == 1:
        lines += [staff.title, ORG_SHORT, f"T: {staff.phone}"]
    elif style == 2:
        lines += [
            f"{staff.title}, {staff.team}",
            ORGANISATION,
            f"{building}, {street}",
            f"{town}, {postcode}",
            f"Direct line: {staff.phone}",
            "Working days: Monday to Thursday",
        ]
    else:
        lines = [staff.first]
    footer = rng.choice(FOOTERS) if rng.random() < 0.7 else ""
    return lines, footer


def staff_body(
    rng: random.Random,
    sender: Staff,
    greeting: str,
    paragraphs: list[str],
    *,
    opener_pool: Sequence[str] = OPENERS_PRO,
    facts: dict[str, str] | None = None,
) -> Body:
    opener = rng.choice(opener_pool).format(**(facts or {"child": "the children"}))
    closing = rng.choice(CLOSINGS)
    sig, footer = signature(rng, sender, mobile=rng.random() < 0.07)
    paras = [p for p in (opener, *paragraphs, closing) if p]
    return Body(greeting, paras, rng.choice(SIGNOFFS), sig, footer)


def greeting_for(
    rng: random.Random, recipients: Sequence[Party], *, name: str | None = None
) -> str:
    """The salutation for these recipients; `name` overrides the name used for one recipient."""
    if not recipients:
        return rng.choice(("Hi,", "Hello,", "Dear all,"))
    if len(recipients) > 1:
        firsts = [p.first for p in recipients[:3]]
        return rng.choice(
            (
                "Dear all,",
                "Hi all,",
                f"Dear {join_names(firsts)},",
                "Dear colleagues," if all(p.professional for p in recipients) else "Dear both,",
                "Hello everyone,",
            )
        )
    p = recipients[0]
    called = name.split()[0] if name else p.first
    if p.professional:
        options = [
            f"Dear {called},",
            f"Hi {called},",
            f"Dear {p.name},",
            f"{called},",
            f"Good morning {called},",
            f"Hello {called}",
        ]
        if p.role == "solicitor" and name is None:
            options += ["Dear Sirs,", "Dear Colleague,"]
        return rng.choice(options)
    formal = f"{p.title} {name.split()[-1]}" if name and " " in name else p.formal
    return rng.choice(
        (
            f"Dear {formal},",
            f"Dear {called},",
            f"Hi {called},",
            f"Hello {called},",
            f"Dear {formal}",
            f"Good afternoon {called},",
        )
    )


def plain_body(body: Body) -> str:
    closing = "\n".join(line for line in (body.signoff, *body.signature) if line)
    parts = [body.greeting, *body.paragraphs, closing]
    if body.footer:
        parts.append(body.footer)
    return "\n\n".join(p for p in parts if p)


def html_body(body: Body, style: str) -> str:
    esc = html.escape
    if style == "outlook":
        para = '<p class="MsoNormal">{}<o:p></o:p></p>'
    elif style == "gmail":
        para = "<div>{}</div><div><br></div>"
    else:
        para = "<p>{}</p>"
    parts = [para.format(esc(body.greeting))] if body.greeting else []
    parts += [para.format(esc(p).replace("\u2019", "&rsquo;")) for p in body.paragraphs]
    if body.signoff:
        parts.append(para.format(esc(body.signoff)))
    parts.append(
        '<div class="signature" style="color:#1f3864">'
        + "<br>".join(esc(s) for s in body.signature)
        + "</div>"
    )
    if body.footer:
        parts.append(f'<p style="font-size:8pt;color:#808080">{esc(body.footer)}</p>')
    return "\n".join(parts)


def _addresses(items: Sequence[Address]) -> str:
    return "; ".join(str(a) for a in items)


def plain_quote(quote: Quote) -> str:
    text = plain_body(quote.body)
    if quote.inner is not None:
        text += "\n\n" + plain_quote(quote.inner)
    when = quote.when
    if quote.style == "gmail_reply":
        day = when.strftime("%a, %-d %b %Y at %H:%M")
        head = f"On {day}, {quote.author} wrote:"
        # Gmail wraps its own text at 76 columns; lines already quoted keep their breaks.
        wrapped = "\n".join(
            (">" + line if line.startswith(">") else "> " + line) if line else ">"
            for para in text.split("\n")
            for line in ([para] if para.startswith(">") else textwrap.wrap(para, 76) or [""])
        )
        return f"{head}\n{wrapped}"
    if quote.style == "gmail_forward":
        day = when.strftime("%a, %-d %b %Y at %H:%M")
        lines = [
            "---------- Forwarded message ---------",
            f"From: {quote.author}",
            f"Date: {day}",
            f"Subject: {quote.subject}",
            f"To: {', '.join(str(a) for a in quote.to)}",
        ]
        if quote.cc:
            lines.append(f"Cc: {', '.join(str(a) for a in quote.cc)}")
        return "\n".join(lines) + "\n\n\n" + text
    sent = when.strftime("%d %B %Y %H:%M")
    lines = [
        "________________________________",
        f"From: {quote.author}",
        f"Sent: {sent}",
        f"To: {_addresses(quote.to)}",
    ]
    if quote.cc:
        lines.append(f"Cc: {_addresses(quote.cc)}")
    lines.append(f"Subject: {quote.subject}")
    return "\n".join(lines) + "\n\n" + text


def html_quote(quote: Quote, style: str) -> str:
    esc = html.escape
    inner = html_body(quote.body, style)
    if quote.inner is not None:
        inner += "\n" + html_quote(quote.inner, style)
    when = quote.when
    if quote.style == "gmail_reply":
        day = when.strftime("%a, %-d %b %Y at %H:%M")
        return (
            f'<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On {esc(day)}, {esc(str(quote.author))} wrote:<br></div>'
            f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">{inner}</blockquote></div>'
        )
    if quote.style == "gmail_forward":
        day = when.strftime("%a, %-d %b %Y at %H:%M")
        return (
            '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">---------- Forwarded message ---------<br>'
            f"From: <strong>{esc(str(quote.author))}</strong><br>Date: {esc(day)}<br>Subject: {esc(quote.subject)}<br>"
            f"To: {esc(', '.join(str(a) for a in quote.to))}<br></div><br><br>{inner}</div>"
        )
    sent = when.strftime("%d %B %Y %H:%M")
    cc = f"<br><b>Cc:</b> {esc(_addresses(quote.cc))}" if quote.cc else ""
    return (
        '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" color="#000000">'
        f"<b>From:</b> {esc(str(quote.author))}<br><b>Sent:</b> {esc(sent)}<br><b>To:</b> {esc(_addresses(quote.to))}{cc}"
        f"<br><b>Subject:</b> {esc(quote.subject)}</font><div>&nbsp;</div></div><div>{inner}</div>"
    )


def render_html(draft: Draft, style: str) -> str:
    body = html_body(draft.body, style)
    if draft.quote is not None:
        body += "\n<br>\n" + html_quote(draft.quote, style)
    if style == "outlook":
        return (
            '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>'
            '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
            '<style>p.MsoNormal{margin:0cm;font-size:11.0pt;font-family:"Calibri",sans-serif}</style>'
            f'</head><body lang="EN-GB"><div class="WordSection1">{body}</div></body></html>'
        )
    if style == "gmail":
        return f'<div dir="ltr">{body}</div>'
    return f'<html><body style="font-family:Arial">{body}</body></html>'


def render_plain(draft: Draft) -> str:
    text = plain_body(draft.body)
    if draft.quote is not None:
        text += "\n\n" + plain_quote(draft.quote)
    return text + "\n"


def build_message(rng: random.Random, draft: Draft) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = staff_address(rng, draft.sender)
    if draft.to_header is not None:
        msg["To"] = draft.to_header
    elif draft.to:
        msg["To"] = draft.to
    if draft.cc:
        msg["Cc"] = draft.cc
    if draft.bcc:
        msg["Bcc"] = draft.bcc  # clients keep Bcc in the submitted copy; the relay reads it there
    msg["Subject"] = draft.subject
    msg["Date"] = format_datetime(draft.when)
    msg["Message-ID"] = draft.message_id
    if draft.in_reply_to:
        msg["In-Reply-To"] = draft.in_reply_to
        msg["References"] = draft.in_reply_to
    if draft.mailer:
        msg["X-Mailer"] = draft.mailer
    style = rng.choice(("outlook", "gmail", "plain"))
    if draft.fmt == "plain":
        msg.set_content(render_plain(draft))
    elif draft.fmt == "html":
        msg.set_content(render_html(draft, style), subtype="html")
    else:
        msg.set_content(render_plain(draft))
        msg.add_alternative(render_html(draft, style), subtype="html")
    for attachment in draft.attachments:
        maintype, subtype = attachment.content_type.split("/")
        msg.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    if draft.forwarded is not None:
        title = re.sub(r"[^\w .,()&-]+", "_", str(draft.forwarded["Subject"]))[:60]
        msg.add_attachment(draft.forwarded, filename=f"{title}.eml")
    fix_boundaries(rng, msg)
    return msg


def fix_boundaries(rng: random.Random, msg: EmailMessage) -> None:
    """Deterministic MIME boundaries (the library would draw them from the global generator)."""
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            part.set_boundary(f"=_gk_{rng.getrandbits(64):016x}")


@dataclass
class Item:
    cls: str
    variant: str
    why: str
    draft: Draft
    case_id: str | None
    other_case_id: str | None = None
    party_id: str | None = None
    target: str | None = None
    evidence: list[str] = field(default_factory=list)


class Builder:
    """Shared machinery of the item builders: dates, message ids, quoting, formats."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world = world
        self.rng = rng
        self.when = dt.datetime(2025, 1, 6, 8, 0, tzinfo=dt.UTC) + dt.timedelta(
            days=rng.randint(0, 320), minutes=rng.randint(0, 600)
        )
        self.when = self.when.replace(tzinfo=dt.timezone(dt.timedelta(hours=rng.choice((0, 1)))))

    @property
    def day(self) -> dt.date:
        return self.when.date()

    def message_id(self, domain: str = INTERNAL_DOMAIN) -> str:
        return f"<{self.rng.getrandbits(80):020x}.{self.rng.randint(1000, 9999)}@{domain}>"

    def fmt(self) -> str:
        return self.rng.choices(("plain", "alternative", "html"), (35, 45, 20))[0]

    def mailer(self) -> str | None:
        return self.rng.choice(
            ("Microsoft Outlook 16.0", None, "Microsoft Outlook 16.0", "Mozilla Thunderbird", None)
        )

    def draft(
        self,
        sender: Staff,
        to: list[Address],
        subject: str,
        body: Body,
        *,
        cc: list[Address] | None = None,
        bcc: list[Address] | None = None,
        attachments: list[Attachment] | None = None,
        quote: Quote | None = None,
    ) -> Draft:
        return Draft(
            sender=sender,
            to=to,
            cc=cc or [],
            bcc=bcc or [],
            subject=subject,
            body=body,
            when=self.when,
            fmt=self.fmt(),
            quote=quote,
            attachments=attachments or [],
            message_id=self.message_id(),
            mailer=self.mailer(),
        )

    def reply_quote(
        self,
        author: Address,
        author_body: Body,
        subject: str,
        to: list[Address],
        *,
        cc: Sequence[Address] = (),
        inner: Quote | None = None,
    ) -> Quote:
        style = self.rng.choice(("gmail_reply", "outlook_reply"))
        when = self.when - dt.timedelta(
            hours=self.rng.randint(1, 90), minutes=self.rng.randint(0, 59)
        )
        return Quote(style, author, to, list(cc), when, subject, author_body, inner)

    def forward_quote(
        self,
        author: Address,
        author_body: Body,
        subject: str,
        to: list[Address],
        cc: Sequence[Address] = (),
    ) -> Quote:
        style = self.rng.choice(("gmail_forward", "outlook_forward"))
        when = self.when - dt.timedelta(hours=self.rng.randint(1, 200))
        return Quote(style, author, to, list(cc), when, subject, author_body)

    def party_message(self, author: Party, voice: Voice) -> Body:
        """What a parent, teenager, solicitor or professional wrote to staff."""
        rng = self.rng
        facts = dict(voice.facts)
        facts.update(self_first=author.first, self_full=author.name)
        if author.role == "child":
            text = rng.choice(TEEN_MESSAGES).format(**facts)
            return Body("", [text], "", [rng.choice(("", "Sent from my iPhone"))])
        if author.parental:
            text = add_typos(rng, rng.choice(PARENT_MESSAGES), 0.5).format(**facts)
            sig = [author.first] if rng.random() < 0.6 else [author.name, "", "Sent from my iPhone"]
            return Body("", [text], "", sig)
        if author.role == "solicitor":
            client = voice.case.party(author.represents) if author.represents else voice.case.mother
            facts["client"] = client.formal
            text = rng.choice(SOLICITOR_MESSAGES).format(**facts)
            firm = author.organisation or ""
            return Body(
                f"Dear {voice.sender.name}",
                [text],
                "Yours sincerely",
                [author.name, "Solicitor", firm],
            )
        text = rng.choice(PROFESSIONAL_MESSAGES).format(**facts)
        return Body(
            f"Hi {voice.sender.first},",
            [text],
            "Thanks",
            [author.name, author.role.replace("_", " ").title(), author.organisation or ""],
        )


def rewrite(draft: Draft, paragraphs: Sequence[str]) -> None:
    """Replace what the message says, keeping its greeting, sign-off and signature."""
    draft.body.paragraphs = [p for p in paragraphs if p]


def reply_subject(rng: random.Random, subject: str) -> str:
    return rng.choice(("Re: ", "RE: ", "Re: ")) + subject


def forward_subject(rng: random.Random, subject: str) -> str:
    return rng.choice(("Fwd: ", "FW: ", "Fw: ")) + subject


# -- item builders: clean ------------------------------------------------------------------------


def _case_item(
    b: Builder,
    case: Case,
    to: list[Party],
    cc: Sequence[Party] = (),
    *,
    reader: Party | None = None,
    sensitive: bool | None = None,
    n_attachments: int | None = None,
    subject_ref: bool | None = None,
    greeting_name: str | None = None,
    full_names: bool | None = None,
    sender: Staff | None = None,
    thread: bool | None = None,
) -> tuple[Draft, Voice, list[str]]:
    """An ordinary message about `case` to `to` (cc `cc`): the body of most items.

    `thread`: a reply to what the first recipient wrote, quoting it (by default now and then;
    False where the mistake could not happen in a reply, like a mistyped address).
    """
    rng = b.rng
    sender = sender or (case.staff if rng.random() < 0.85 else rng.choice(b.world.senders))
    if reader is None and len(to) == 1 and to[0].parental:
        reader = to[0]
    voice = voice_for(rng, case, sender, b.day, reader, full_names=full_names)
    paragraphs, topics = case_paragraphs(rng, voice, sensitive)
    line = mention_of_case(rng, voice)
    if line:
        paragraphs.insert(0, line)
    opener_pool = OPENERS_PARENT if voice.mode == "parent" else OPENERS_PRO
    body = staff_body(
        rng,
        sender,
        greeting_for(rng, to, name=greeting_name),
        paragraphs,
        opener_pool=opener_pool,
        facts=voice.facts,
    )
    subject = subject_for(rng, case, topics[0], voice.facts, subject_ref)
    count = attachment_count(rng) if n_attachments is None else n_attachments
    attachments = attachments_for(rng, case, voice, count)
    draft = b.draft(
        sender,
        [address_of(rng, p) for p in to],
        subject,
        body,
        cc=[address_of(rng, p) for p in cc],
        attachments=attachments,
    )
    if (rng.random() < 0.22 if thread is None else thread) and to:
        draft.quote, subject = _incoming(b, to[0], voice, subject)
        draft.subject = reply_subject(rng, subject)
        draft.in_reply_to = b.message_id(to[0].email.rpartition("@")[2])
    return draft, voice, topics


def _ordinary_recipients(
    rng: random.Random, case: Case, parent_share: float = 0.4
) -> tuple[list[Party], list[Party]]:
    """To and Cc for ordinary mail about a case: whoever would really get it, nobody hidden."""
    reachable = case.reachable()
    parents = [p for p in reachable if p.parental]
    pros = [p for p in reachable if p.professional]
    if parents and rng.random() < parent_share:
        to = [rng.choice(parents)]
        sol = case.solicitor_for(to[0])
        cc = [sol] if sol and rng.random() < 0.3 else []
        return to, cc
    if pros:
        to = [rng.choice(pros)]
        others = [p for p in pros if p is not to[0] and not _hides(case, [*to, p])]
        cc = rng.sample(others, min(len(others), rng.choice((0, 0, 1, 2))))
        return to, cc
    return [rng.choice(reachable)], []


def _hides(case: Case, recipients: Sequence[Party]) -> bool:
    """Whether a confidential party of the case is among recipients that are withheld from."""
    ids = {p.party_id for p in recipients}
    return any(p.party_id in ids and p.withheld_from & ids for p in case.parties)


def clean_plain(b: Builder) -> Item:
    case = b.world.pick_case(b.rng, lambda c: bool(c.reachable()))
    to, cc = _ordinary_recipients(b.rng, case)
    draft, _, _ = _case_item(b, case, to, cc)
    who = ", ".join(f"{p.role} {p.name}" for p in to + cc)
    return Item(
        CLEAN, "ordinary", f"ordinary mail about case {case.case_id} to {who}", draft, case.case_id
    )


def clean_solicitor_many_cases(b: Builder) -> Item:
    world, rng = b.world, b.rng
    shared = [
        a
        for a, owners in world.by_email.items()
        if len({p.case_id for p in owners}) > 1 and owners[0].role == "solicitor"
    ]
    if not shared:
        raise NoCandidate("no solicitor acts in several cases")
    address = rng.choice(shared)
    solicitor = rng.choice(world.by_email[address])
    case = world.by_id[solicitor.case_id]
    client = case.party(solicitor.represents) if solicitor.represents else None
    draft, _, _ = _case_item(b, case, [solicitor], subject_ref=True if rng.random() < 0.7 else None)
    n_cases = len({p.case_id for p in world.by_email[address]})
    why = f"to {solicitor.name}, who acts in {n_cases} cases, about case {case.case_id} (for {client.name if client else 'a party'})"
    return Item(CLEAN, "solicitor_in_several_cases", why, draft, case.case_id)


def clean_solicitor_two_cases(b: Builder) -> Item:
    """One mail to a solicitor about two of their cases: they are on record in both."""
    world, rng = b.world, b.rng
    shared = [a for a, owners in world.by_email.items() if len({p.case_id for p in owners}) > 1 and owners[0].role == "solicitor"]  # fmt: skip
    if not shared:
        raise NoCandidate("no solicitor acts in several cases")
    roles = rng.sample(world.by_email[rng.choice(shared)], 2)
    if roles[0].case_id == roles[1].case_id:
        raise NoCandidate("the same case twice")
    solicitor = roles[0]
    sender = world.by_id[solicitor.case_id].staff
    lines = []
    for role in roles:
        case = world.by_id[role.case_id]
        voice = voice_for(rng, case, sender, b.day, full_names=rng.random() < 0.5)
        client = case.party(role.represents).formal if role.represents else "your client"
        lead = rng.choice(
            (
                f"{case.surname} ({rng.choice(case.references)}), for {client}:",
                f"Re {voice.facts['children_full']} – {rng.choice(case.references)}:",
                f"{rng.choice(case.references)} {case.surname}:",
            )
        )
        lines.append(
            f"{lead} " + " ".join(sentences(rng, voice, rng.choice(("hearing", "admin")), 2))
        )
    body = staff_body(
        rng,
        sender,
        greeting_for(rng, [solicitor]),
        lines,
        opener_pool=(
            "I have two of your cases at the moment, so one email for both:",
            "A quick update on both of your matters with me:",
        ),
    )
    subject = rng.choice(
        (
            "Your two cases",
            "Update on both matters",
            f"{world.by_id[roles[0].case_id].surname} / {world.by_id[roles[1].case_id].surname}",
        )
    )
    draft = b.draft(sender, [address_of(rng, solicitor)], subject, body)
    why = f"to {solicitor.name}, on record in both cases {roles[0].case_id} and {roles[1].case_id}, about both"
    return Item(
        CLEAN, "solicitor_two_cases_one_mail", why, draft, roles[0].case_id, roles[1].case_id
    )


def clean_professional(b: Builder) -> Item:
    case = b.world.pick_case(
        b.rng, lambda c: bool(c.reachable("social_worker", "guardian", "school", "health"))
    )
    pro = b.rng.choice(case.reachable("social_worker", "guardian", "school", "health"))
    draft, _, _ = _case_item(b, case, [pro], sensitive=True)
    return Item(
        CLEAN,
        "professional",
        f"sensitive detail to the {pro.role} {pro.name} at the verified address",
        draft,
        case.case_id,
    )


def clean_internal(b: Builder) -> Item:
    world, rng = b.world, b.rng
    case = world.pick_case(rng, lambda c: bool(world.teammates(c.staff)))
    sender = case.staff
    mates = world.teammates(sender)
    to_staff = rng.sample(mates, min(len(mates), rng.choice((1, 1, 1, 2))))
    voice = voice_for(rng, case, sender, b.day, full_names=True)
    paragraphs, topics = case_paragraphs(rng, voice, True)
    paragraphs.insert(
        0,
        rng.choice(
            (
                f"Could I get your view on {case.surname} ({case.case_id}) before I file?",
                f"Quick one about {voice.facts['children_full']} ({rng.choice(case.references)}):",
                "For supervision on Thursday:",
                "",
            )
        ),
    )
    variant = "internal"
    other: Case | None = None
    others = [c for c in world.caseload[sender.email] if c is not case]
    if others and rng.random() < 0.4:  # supervision notes cover several families
        other = rng.choice(others)
        other_voice = voice_for(rng, other, sender, b.day, full_names=True)
        paragraphs.append(
            f"Also {other.surname} ({other.case_id}): "
            + " ".join(sentences(rng, other_voice, "hearing", 2))
        )
        variant = "internal_several_cases"
    greeting = (
        greeting_for(rng, [])
        if len(to_staff) > 1
        else rng.choice((f"Hi {to_staff[0].first},", f"{to_staff[0].first},", ""))
    )
    body = staff_body(rng, sender, greeting, [p for p in paragraphs if p])
    subject = subject_for(rng, case, topics[0], voice.facts)
    attachments = attachments_for(rng, case, voice, attachment_count(rng))
    draft = b.draft(
        sender, [staff_address(rng, s) for s in to_staff], subject, body, attachments=attachments
    )
    return Item(
        CLEAN,
        variant,
        f"internal mail between staff about case {case.case_id}",
        draft,
        case.case_id,
        other.case_id if other else None,
    )


def _incoming(b: Builder, author: Party, voice: Voice, topic_subject: str) -> tuple[Quote, str]:
    """The message a party sent to staff that is now being replied to, perhaps quoting staff."""
    rng, sender = b.rng, voice.sender
    inner = None
    if rng.random() < 0.35:  # the party replied to an earlier mail from staff
        earlier_paras, _ = case_paragraphs(rng, voice, sensitive=False, count=1)
        earlier = staff_body(rng, sender, greeting_for(rng, [author]), earlier_paras)
        inner = Quote(
            rng.choice(("gmail_reply", "outlook_reply")),
            staff_address(rng, sender),
            [address_of(rng, author)],
            [],
            b.when - dt.timedelta(days=rng.randint(2, 9)),
            topic_subject,
            earlier,
        )
        topic_subject = reply_subject(rng, topic_subject)
    message = b.party_message(author, voice)
    quote = b.reply_quote(
        address_of(rng, author), message, topic_subject, [staff_address(rng, sender)], inner=inner
    )
    return quote, topic_subject


def clean_reply(b: Builder) -> Item:
    rng = b.rng
    case = b.world.pick_case(rng, lambda c: bool(c.reachable()))
    author = rng.choice(case.reachable())
    sender = case.staff
    reader = author if author.parental else None
    voice = voice_for(rng, case, sender, b.day, reader)
    subject0 = subject_for(rng, case, rng.choice(list(TOPIC_SUBJECTS)), voice.facts)
    quote, subject0 = _incoming(b, author, voice, subject0)
    paragraphs, _ = case_paragraphs(rng, voice, count=rng.choice((1, 1, 2)))
    body = staff_body(
        rng,
        sender,
        greeting_for(rng, [author]),
        paragraphs,
        opener_pool=("Thanks for your email.", "Thank you for letting me know.", "Thanks,", ""),
    )
    cc = []
    sol = case.solicitor_for(author) if author.parental else None
    if sol and sol.reachable and rng.random() < 0.25:
        cc = [address_of(rng, sol)]
    draft = b.draft(
        sender, [address_of(rng, author)], reply_subject(rng, subject0), body, cc=cc, quote=quote
    )
    draft.in_reply_to = b.message_id(author.email.split("@")[1])
    return Item(
        CLEAN,
        "reply",
        f"reply to {author.role} {author.name} quoting the same case's thread",
        draft,
        case.case_id,
    )


def clean_forward(b: Builder) -> Item:
    """Forwarding a professional's mail to another professional of the case, or a parent's to their solicitor."""
    rng = b.rng

    def fits(c: Case) -> bool:
        return len(c.reachable()) >= 3 and bool(
            c.reachable("social_worker", "guardian", "solicitor", "school")
        )

    case = b.world.pick_case(rng, fits)
    sender = case.staff
    pros = case.reachable("social_worker", "guardian", "solicitor", "school", "health")
    represented = [(p, case.solicitor_for(p)) for p in case.reachable() if p.parental]
    parents = [(p, sol) for p, sol in represented if sol is not None and sol.reachable]
    if parents and rng.random() < 0.3:
        author, target = rng.choice(parents)
        assert target is not None
    else:
        author = rng.choice(pros)
        others = [p for p in pros if p is not author]
        if not others:
            raise NoCandidate("nobody to forward to")
        target = rng.choice(others)
    voice = voice_for(rng, case, sender, b.day)
    message = b.party_message(author, voice)
    subject0 = subject_for(rng, case, rng.choice(list(TOPIC_SUBJECTS)), voice.facts)
    note = rng.choice(
        (
            "FYI - see below.",
            "Please see the email below from {name}.",
            "Forwarding for your information; grateful for your thoughts before the hearing.",
            "See below. Can we discuss?",
        )
    ).format(name=author.name)
    body = staff_body(rng, sender, greeting_for(rng, [target]), [note])
    if rng.random() < 0.2:  # forwarded as an attachment, with its own attachment
        inner_b = Builder(b.world, random.Random(rng.random()))
        inner_doc = attachments_for(rng, case, voice, 1)
        inner_draft = inner_b.draft(
            sender, [staff_address(rng, sender)], subject0, message, attachments=inner_doc
        )
        forwarded = build_message(rng, inner_draft)
        del forwarded["From"]
        forwarded["From"] = address_of(rng, author)
        draft = b.draft(sender, [address_of(rng, target)], forward_subject(rng, subject0), body)
        draft.forwarded = forwarded
        variant = "forward_as_attachment"
    else:
        quote = b.forward_quote(
            address_of(rng, author), message, subject0, [staff_address(rng, sender)]
        )
        draft = b.draft(
            sender, [address_of(rng, target)], forward_subject(rng, subject0), body, quote=quote
        )
        variant = "forward"
    return Item(
        CLEAN,
        variant,
        f"forward of {author.role} {author.name}'s mail to {target.role} {target.name}, same case",
        draft,
        case.case_id,
    )


def clean_name_variant(b: Builder) -> Item:
    rng = b.rng

    def has_variant(c: Case) -> bool:
        return (c.mother.reachable and bool(c.mother.other_names)) or any(
            ch.other_names for ch in c.children
        )

    case = b.world.pick_case(rng, has_variant)
    mother = case.mother
    nicknamed = [ch for ch in case.children if ch.other_names]
    if mother.reachable and mother.other_names and (not nicknamed or rng.random() < 0.6):
        previous = mother.other_names[0]
        draft, _, _ = _case_item(
            b, case, [mother], greeting_name=previous if rng.random() < 0.5 else None
        )
        draft.to = [Address(display_name=previous, addr_spec=mother.email)]
        if rng.random() < 0.5:
            draft.body.greeting = f"Dear {mother.title} {previous.split()[-1]},"
        why = f"the mother {mother.name} addressed by her previous name {previous} (other_names)"
        return Item(CLEAN, "previous_surname", why, draft, case.case_id)
    child = rng.choice(nicknamed)
    to, cc = _ordinary_recipients(rng, case)
    draft, _, _ = _case_item(b, case, to, cc)
    nickname = child.other_names[0].split()[0]
    draft.body.paragraphs.insert(
        1 if len(draft.body.paragraphs) > 1 else 0,
        rng.choice(
            (
                f"{nickname} seemed much happier when I saw {nickname} at school this week.",
                f"{nickname} has asked whether the next visit can be after school.",
                f"I have spoken to {nickname} ({child.name}) about the hearing.",
            )
        ),
    )
    return Item(
        CLEAN,
        "nickname",
        f"the child {child.name} called {nickname} (other_names)",
        draft,
        case.case_id,
    )


def clean_letter_case(b: Builder) -> Item:
    rng = b.rng
    case = b.world.pick_case(rng, lambda c: bool(c.reachable()))
    to, cc = _ordinary_recipients(rng, case)
    draft, _, _ = _case_item(b, case, to, cc)
    target = draft.to[0]
    local, _, domain = target.addr_spec.rpartition("@")
    styles = (local.upper(), local.title(), local[0].upper() + local[1:])
    changed = f"{rng.choice(styles)}@{rng.choice((domain.title(), domain.upper(), domain))}"
    if changed == target.addr_spec:
        changed = f"{local.upper()}@{domain}"
    draft.to[0] = Address(display_name=target.display_name, addr_spec=changed)
    return Item(
        CLEAN, "letter_case", f"{target.addr_spec} written as {changed}", draft, case.case_id
    )


def clean_attachments(b: Builder) -> Item:
    case = b.world.pick_case(b.rng, lambda c: bool(c.reachable()))
    to, cc = _ordinary_recipients(b.rng, case)
    draft, _, _ = _case_item(b, case, to, cc, n_attachments=b.rng.choice((2, 3, 3)))
    names = ", ".join(a.filename for a in draft.attachments)
    draft.body.paragraphs.insert(
        0,
        b.rng.choice(
            (
                "Please find attached the documents for the hearing.",
                "Attached as promised.",
                "I attach the following:",
                "Please see attached.",
            )
        ),
    )
    return Item(
        CLEAN,
        "several_attachments",
        f"attachments about the right case: {names}",
        draft,
        case.case_id,
    )


def _household_parents(b: Builder, sender: Staff, count: int) -> list[Party]:
    """One reachable parent from each of `count` different cases, from the sender's caseload first."""
    world, rng = b.world, b.rng
    cases = list(world.caseload[sender.email]) + rng.sample(world.cases, min(len(world.cases), 40))
    parents: list[Party] = []
    seen: set[str] = set()
    for case in cases:
        options = [p for p in case.reachable() if p.parental]
        if case.case_id in seen or not options:
            continue
        seen.add(case.case_id)
        parents.append(rng.choice(options))
        if len(parents) == count:
            break
    if len(parents) < 2:
        raise NoCandidate("not enough households")
    return parents


def _circular(b: Builder, sender: Staff) -> tuple[str, Body]:
    rng = b.rng
    subject, text = rng.choice(CIRCULARS)
    centre = rng.choice(b.world.centres or [CONTACT_CENTRES[0]])[0]
    facts = {
        "office_town": sender.office[2],
        "date": _date_text(rng, b.day + dt.timedelta(days=rng.randint(7, 40))),
        "time": _time_text(rng),
        "phone": sender.phone,
        "centre": centre,
    }
    body = staff_body(
        rng,
        sender,
        rng.choice(("Dear parent/carer,", "Dear all,", "Hello,", "Dear parents and carers,")),
        [text.format(**facts)],
        opener_pool=("",),
    )
    return subject, body


def clean_circular_bcc(b: Builder) -> Item:
    rng = b.rng
    sender = rng.choice(b.world.senders)
    parents = _household_parents(b, sender, rng.randint(3, 12))
    subject, body = _circular(b, sender)
    draft = b.draft(
        sender,
        [staff_address(rng, sender)],
        subject,
        body,
        bcc=[address_of(rng, p) for p in parents],
    )
    if rng.random() < 0.5:
        draft.to = []
        draft.to_header = "undisclosed-recipients:;"
    return Item(
        CLEAN,
        "circular_bcc",
        f"a circular to {len(parents)} parents of different cases, all in Bcc",
        draft,
        None,
    )


def clean_new_professional(b: Builder) -> Item:
    """Judgement: no personal data at all to a new person at a partner organisation is released."""
    world, rng = b.world, b.rng
    pros = [
        p
        for c in rng.sample(world.cases, min(len(world.cases), 50))
        for p in c.reachable("social_worker", "school", "health")
    ]
    domain = rng.choice(pros).email.split("@")[1] if pros else "leeds.example.gov.uk"
    first, last = (
        rng.choice(FIRST_NAMES),
        rng.choice(
            (
                "Okafor",
                "Lindqvist",
                "Brennan",
                "Nowak",
                "Achterberg",
                "Quigley",
                "Fairweather",
                "Oduya",
            )
        ),
    )
    address = f"{first.lower()}.{last.lower()}@{domain}"
    if world.owners(address) or world.near_verified(address, 3):
        raise NoCandidate("new address too close to a known one")
    sender = rng.choice(world.senders)
    subject, text = rng.choice(NEW_PROFESSIONAL_NOTES)
    facts = {
        "phone": sender.phone,
        "date": _date_text(rng, b.day + dt.timedelta(days=12)),
        "date_short": f"{(b.day + dt.timedelta(days=12)).day} {MONTHS[(b.day + dt.timedelta(days=12)).month - 1][:3]}",
        "time": _time_text(rng),
        "office_town": sender.office[2],
        "team": sender.team,
    }
    body = staff_body(
        rng,
        sender,
        rng.choice((f"Hi {first},", f"Dear {first},", f"Dear {first} {last},")),
        [text.format(**facts)],
        opener_pool=("",),
    )
    draft = b.draft(
        sender,
        [Address(display_name=f"{first} {last}", addr_spec=address)],
        subject.format(**facts),
        body,
    )
    return Item(
        CLEAN,
        "new_professional_no_personal_data",
        f"no personal data to {address}, new at a partner organisation ({domain})",
        draft,
        None,
    )


def clean_group(b: Builder) -> Item:
    """Everyone professional on the case in one mail: the reply-all world of a case."""
    rng = b.rng
    case = b.world.pick_case(
        rng,
        lambda c: (
            len(c.reachable("solicitor", "social_worker", "guardian", "school", "health")) >= 2
        ),
    )
    pros = case.reachable("solicitor", "social_worker", "guardian", "school", "health")
    group = rng.sample(pros, min(len(pros), rng.randint(2, 4)))
    draft, _, _ = _case_item(
        b,
        case,
        group[:1] if rng.random() < 0.5 else group[:2],
        group[2:] if rng.random() < 0.5 else group[1:],
    )
    draft.body.greeting = rng.choice(("Dear all,", "Dear colleagues,", "Hi all,"))
    return Item(
        CLEAN,
        "professionals_together",
        f"{len(group)} professionals of case {case.case_id} together",
        draft,
        case.case_id,
    )


def clean_confidential_own_side(b: Builder) -> Item:
    """A confidential address to the party themself, their own solicitor or a professional."""
    rng = b.rng

    def own_side(c: Case) -> list[Party]:
        conf = c.mother
        if not conf.confidential or not conf.postal:
            return []
        return [p for p in c.reachable() if p.party_id not in conf.withheld_from]

    case = b.world.pick_case(rng, lambda c: bool(own_side(c)))
    conf = case.mother
    rec = rng.choice(own_side(case))
    draft, _, _ = _case_item(b, case, [rec])
    lines, postcode = conf.postal[0]
    where = ", ".join((*lines, postcode))
    if rec is conf:
        text = rng.choice(
            (
                f"I have updated our records with your new address, {where}.",
                f"Can I just check that {where} is still the right address for letters?",
            )
        )
    else:
        text = rng.choice((
            f"For your records, {conf.formal}'s new address is {where}. Please note it is confidential and must not be shared with {case.father.formal}.",
            f"{conf.formal} has moved to {where}; the address is withheld from the other side.",
            f"The home visit will be at {conf.formal}'s address ({where}). Please keep this confidential.",
        ))  # fmt: skip
    insert_early(draft, text)
    why = (
        f"{conf.name}'s confidential address to {rec.role} {rec.name}, from whom it is not withheld"
    )
    return Item(CLEAN, "confidential_address_own_side", why, draft, case.case_id)


CLEAN_VARIANTS: tuple[tuple[Callable[[Builder], Item], int], ...] = (
    (clean_plain, 16),
    (clean_solicitor_many_cases, 9),
    (clean_solicitor_two_cases, 3),
    (clean_professional, 10),
    (clean_internal, 8),
    (clean_reply, 14),
    (clean_forward, 9),
    (clean_name_variant, 9),
    (clean_letter_case, 5),
    (clean_attachments, 9),
    (clean_circular_bcc, 4),
    (clean_new_professional, 3),
    (clean_group, 4),
    (clean_confidential_own_side, 4),
)


# -- item builders: mistakes ---------------------------------------------------------------------


def _unique_names(world: World, case: Case, parties: Iterable[Party]) -> list[str]:
    """Names of these parties that no other case in the record has."""
    return [p.name for p in parties if world.cases_of_name[name_key(p.name)] == {case.case_id}]


def _identifying(
    world: World, rng: random.Random, case: Case, draft: Draft, voice: Voice
) -> list[str]:
    """Make sure the item says which case it is about (as real mail does), and return how.

    Either a case reference, or a name that only this case has in the whole record:
    without one, no reader could tell which family a message is about.
    """
    text = draft.subject + " " + plain_body(draft.body)
    refs = [r for r in case.references if r in text]
    if refs:
        return refs
    lay = [p for p in case.parties if not p.professional]
    unique = [n for n in _unique_names(world, case, lay) if n in text]
    if unique and rng.random() < 0.6:
        return unique
    children = _unique_names(world, case, case.children)
    if children and rng.random() < 0.5:
        child = rng.choice(children)
        line = rng.choice(
            (
                f"I saw {child} at school on {voice.facts['date']}.",
                f"This is about {child}'s arrangements.",
                f"Re: {child}",
            )
        )
        draft.body.paragraphs.insert(min(1, len(draft.body.paragraphs)), line)
        return [child]
    ref = rng.choice(case.references)
    if rng.random() < 0.6:
        draft.subject = (
            f"{draft.subject} - {ref}" if rng.random() < 0.5 else f"{ref} {draft.subject}"
        )
    else:
        draft.body.paragraphs.insert(
            0, rng.choice((f"Our ref: {ref}", f"Case number: {ref}", f"Ref {ref}"))
        )
    return [ref]


def other_case_recipient(b: Builder) -> Item:
    world, rng = b.world, b.rng
    case = world.pick_case(rng, lambda c: len(c.reachable()) >= 1)
    to, cc = _ordinary_recipients(rng, case, parent_share=0.6)
    slot = rng.randrange(len(to) + len(cc)) if cc and rng.random() < 0.4 else 0
    intended = (to + cc)[slot]
    wrong, how = world.autocomplete(rng, intended, case)
    draft, voice, _ = _case_item(b, case, to, cc, thread=False)
    evidence = _identifying(world, rng, case, draft, voice)
    wrong_address = address_of(rng, wrong, display=wrong.name if rng.random() < 0.8 else "")
    if slot < len(to):
        draft.to[slot] = wrong_address
    else:
        draft.cc[slot - len(to)] = wrong_address
    variant = ("autocomplete_to" if slot < len(to) else "autocomplete_cc") + (
        "_professional" if wrong.professional else ""
    )
    why = f"meant {intended.name} <{intended.email}> (case {case.case_id}); autocomplete picked {wrong.name} <{wrong.email}> of case {wrong.case_id} ({how})"
    return Item(
        "recipient_other_case",
        variant,
        why,
        draft,
        case.case_id,
        wrong.case_id,
        wrong.party_id,
        wrong.email,
        evidence,
    )


def slip(rng: random.Random, address: str) -> tuple[str, str, str]:
    """A typing slip in an address: what went wrong, as a person would say it."""
    local, _, domain = address.rpartition("@")
    kind = rng.choice(("swap", "drop", "double", "key", "digit", "dot", "tld", "domain", "domain"))
    if kind == "digit" and any(ch.isdigit() for ch in local):
        digits = [i for i, ch in enumerate(local) if ch.isdigit()]
        i = rng.choice(digits)
        new = (
            local[:i]
            + rng.choice(("", str((int(local[i]) + 1) % 10), local[i] * 2))
            + local[i + 1 :]
        )
        return f"{new}@{domain}", "digit", "a digit wrong in the local part"
    if kind == "dot" and ("." in local or "_" in local):
        i = max(local.find("."), local.find("_"))
        new = local[:i] + rng.choice(("", "_" if local[i] == "." else ".", "-")) + local[i + 1 :]
        return f"{new}@{domain}", "separator", "the dot in the local part dropped or changed"
    if kind == "tld":
        for old, options in (
            (".com", (".co", ".con", ".cm", ".om")),
            (".net", (".ne", ".nt", ".met")),
            (".org", (".ogr", ".or")),
            (".co.uk", (".co.k", ".c.uk", ".co.ukk")),
            (".gov.uk", (".gov.k", ".go.uk")),
            (".example", (".exmaple", ".exampel", ".examle")),
        ):
            if domain.endswith(old):
                return (
                    f"{local}@{domain[: -len(old)]}{rng.choice(options)}",
                    "domain_ending",
                    f"the ending {old} mistyped",
                )
    if kind == "domain":
        label, _, rest = domain.partition(".")
        if len(label) >= 4:
            i = rng.randrange(1, len(label) - 1)
            if rng.random() < 0.6 and label[i] != label[i + 1]:
                new = label[:i] + label[i + 1] + label[i] + label[i + 2 :]
            else:
                new = label[:i] + label[i + 1 :]
            return f"{local}@{new}.{rest}", "domain_typo", "a slip in the domain (gmial-style)"
    target = local
    if len(target) < 3:
        return f"{local}{rng.choice('123')}@{domain}", "extra_character", "an extra character"
    i = rng.randrange(1, len(target) - 1)
    if kind == "swap" and target[i] != target[i + 1]:
        return (
            f"{target[:i]}{target[i + 1]}{target[i]}{target[i + 2 :]}@{domain}",
            "transposition",
            "two letters transposed",
        )
    if kind == "double":
        return f"{target[:i]}{target[i]}{target[i:]}@{domain}", "doubled_letter", "a letter doubled"
    if kind == "key" and target[i].lower() in KEYBOARD:
        return (
            f"{target[:i]}{rng.choice(KEYBOARD[target[i].lower()])}{target[i + 1 :]}@{domain}",
            "neighbouring_key",
            "a neighbouring key",
        )
    return f"{target[:i]}{target[i + 1 :]}@{domain}", "missing_letter", "a letter missing"


def lookalike_of(world: World, rng: random.Random, address: str) -> tuple[str, str, str]:
    """A slip of `address` that is nobody's verified address, within two edits of it."""
    for _ in range(40):
        candidate, code, how = slip(rng, address)
        try:
            normalise_email(candidate)
        except InvalidContact:
            continue
        key = email_key(candidate)
        if (
            key == email_key(address)
            or world.owners(candidate)
            or ".." in candidate
            or candidate.startswith(".")
            or ".@" in candidate
        ):
            continue
        if OSA.distance(key, email_key(address)) <= 2:
            return candidate, code, how
    raise NoCandidate(f"no slip of {address}")


def lookalike_recipient(b: Builder) -> Item:
    world, rng = b.world, b.rng
    case = world.pick_case(rng, lambda c: bool(c.reachable()))
    to, cc = _ordinary_recipients(rng, case)
    draft, _, _ = _case_item(b, case, to, cc, thread=False)
    slot = rng.randrange(len(draft.to) + len(draft.cc)) if cc and rng.random() < 0.3 else 0
    intended = (to + cc)[slot]
    wrong, code, how = lookalike_of(world, rng, intended.email)
    line = draft.to if slot < len(to) else draft.cc
    index = slot if slot < len(to) else slot - len(to)
    line[index] = Address(display_name=line[index].display_name, addr_spec=wrong)
    why = f"{wrong} instead of {intended.email} ({intended.role} {intended.name}): {how}"
    return Item(
        "recipient_lookalike", code, why, draft, case.case_id, None, intended.party_id, wrong
    )


def _two_reachable(case: Case) -> list[tuple[Party, Party]]:
    """Pairs (named, actual) of the case's reachable parties that a swap could mix up."""
    people = case.reachable()
    pairs = []
    for named in case.parties:
        for actual in people:
            if (
                named is actual
                or not named.emails
                or email_key(actual.email) in {email_key(e) for e in named.emails}
            ):
                continue
            if named.first.lower() == actual.first.lower() or name_key(named.name) == name_key(
                actual.name
            ):
                continue
            if actual.party_id in named.withheld_from:
                continue
            if named.role == "child" or actual.role == "child":
                continue
            pairs.append((named, actual))
    return pairs


def display_name_mismatch(b: Builder) -> Item:
    world, rng = b.world, b.rng
    variant = rng.choices(
        ("contact_saved_wrong", "salutation_other_party", "unverified_address"), (35, 35, 30)
    )[0]
    case = world.pick_case(rng, lambda c: bool(_two_reachable(c)))
    named, actual = rng.choice(_two_reachable(case))
    if variant == "unverified_address":
        named = rng.choice([p for p in case.reachable() if p.parental] or case.reachable())
        address = _unverified_address_for(world, rng, named)
        draft, _, _ = _case_item(b, case, [named], thread=False)
        draft.to = [
            Address(
                display_name=rng.choice(
                    (named.name, named.name, f"{named.title} {named.name}".strip())
                ),
                addr_spec=address,
            )
        ]
        why = f"display name {named.name} ({named.role}) but {address} is not the verified {named.email}"
        return Item(
            "display_name_mismatch",
            variant,
            why,
            draft,
            case.case_id,
            None,
            named.party_id,
            address,
        )
    if variant == "contact_saved_wrong":
        draft, _, _ = _case_item(
            b, case, [named], reader=named if named.parental else None, thread=False
        )
        draft.to = [Address(display_name=named.name, addr_spec=actual.email)]
        why = f"display name {named.name} ({named.role}) on {actual.email}, the address of {actual.name} ({actual.role})"
        return Item(
            "display_name_mismatch",
            variant,
            why,
            draft,
            case.case_id,
            None,
            named.party_id,
            actual.email,
        )
    draft, _, _ = _case_item(
        b, case, [actual], reader=named if named.parental else None, thread=False
    )
    greetings = [f"Dear {named.first},", f"Hi {named.first},", f"Dear {named.name},"]
    # "Dear Ms Webb" to Yasmin Webb greets her as well as Amelia Webb, as it does Isaac
    # Booth once his record says he was Isaac Webb: no mistake to see.
    if named.surname.casefold() not in {
        n.split()[-1].casefold() for n in (actual.name, *actual.other_names)
    }:
        greetings.append(f"Dear {named.formal},")
    draft.body.greeting = rng.choice(greetings)
    if named.professional and rng.random() < 0.5:
        draft.body.greeting = f"Dear {named.first},"
    why = f"salutation names {named.name} ({named.role}) but the mail goes to {actual.name} <{actual.email}> ({actual.role})"
    return Item(
        "display_name_mismatch",
        variant,
        why,
        draft,
        case.case_id,
        None,
        named.party_id,
        actual.email,
    )


def _unverified_address_for(world: World, rng: random.Random, party: Party) -> str:
    first, last = party.first.lower(), party.surname.lower()
    for _ in range(30):
        local = rng.choice(
            (
                f"{first}{last}{rng.randint(80, 99)}",
                f"{first}.{last}.home",
                f"{last}{first[0]}{rng.randint(1, 9)}",
                f"{first}x{last}",
                f"{party.title.lower()}{last}{rng.randint(1, 99)}",
                f"{first}_{rng.randint(1980, 1999)}",
            )
        )
        address = f"{local}@{rng.choice(('oldmail.example', 'yahoo.example', 'hotmail.example', 'inbox.example'))}"
        if not world.owners(address) and not world.near_verified(address, 2):
            return address
    raise NoCandidate("no unverified address")


def _other_case(world: World, rng: random.Random, case: Case, recipients: Sequence[Party]) -> Case:
    """Another of the same worker's cases (where pasted text comes from), sharing nobody with `case`."""
    mine = world.caseload[case.staff.email]
    taken = {email_key(p.email) for p in recipients} | case.emails()
    names = case.names()

    def fits(other: Case) -> bool:
        return (
            other is not case
            and not (other.emails() & taken)
            and not (other.names() & names)
            and not (other.names() & world.staff_names)
            and not any(p.confidential for p in other.parties)
        )

    options = [c for c in mine if fits(c)]
    if options and rng.random() < 0.7:
        return rng.choice(options)
    return world.pick_case(rng, fits)


def _about_other(
    rng: random.Random, other: Case, voice: Voice, strength: str
) -> tuple[str, list[str]]:
    """A paragraph about another family, and the strings in it that identify that family."""
    other_voice = voice_for(
        rng, other, voice.sender, voice.day, full_names=True, child=other.children[0]
    )
    topic = rng.choice(("contact", "hearing", "school", "safeguarding", "health"))
    text = " ".join(sentences(rng, other_voice, topic, rng.randint(1, 2)))
    child = other.children[0]
    evidence = []
    lead = rng.choice(
        (
            f"{child.name} has settled well with {other.mother.formal}.",
            f"I saw {child.name} and {other.mother.name} at {other.school} on {other_voice.facts['date']}.",
            f"As regards {child.name}, {other.father.name} has not attended the last two sessions.",
            f"{other.mother.name} told me that {child.first} is sleeping better.",
        )
    )
    evidence += [n for n in (child.name, other.mother.name, other.father.name) if n in lead]
    if strength == "reference":
        ref = rng.choice(other.references)
        lead = f"({ref}) {lead}" if rng.random() < 0.5 else f"{lead} Our ref {ref}."
        evidence.append(ref)
    return f"{lead} {text}", evidence


def content_other_case(b: Builder) -> Item:
    world, rng = b.world, b.rng
    variant = rng.choices(
        (
            "pasted_paragraph",
            "subject_reference",
            "wrong_thread_reply",
            "body_reference",
            "whole_body_other_family",
        ),
        (35, 20, 15, 15, 15),
    )[0]
    case = world.pick_case(rng, lambda c: bool(c.reachable()))
    to, cc = _ordinary_recipients(rng, case)
    other = _other_case(world, rng, case, to + cc)
    draft, voice, topics = _case_item(
        b, case, to, cc, subject_ref=False if variant == "subject_reference" else None
    )
    if variant == "subject_reference":
        _strip_references(draft, case)
        ref = rng.choice(other.references)
        draft.subject = rng.choice(
            (
                f"{other.surname} {ref} – {rng.choice(TOPIC_SUBJECTS[topics[0]]).format(**voice.facts)}",
                f"Re: {ref} {draft.subject}",
                f"[{ref}] {draft.subject}",
            )
        )
        why = f"subject carries {ref} (case {other.case_id}); body and recipients are case {case.case_id}"
        evidence = [ref]
    elif variant == "body_reference":
        _strip_references(draft, case)
        ref = rng.choice(other.references)
        draft.body.paragraphs.insert(
            0,
            rng.choice((f"Our ref: {ref}", f"Case number: {ref}", f"Re: {other.surname} ({ref})")),
        )
        why = f"body heads the letter with {ref} (case {other.case_id}), reused from another letter"
        evidence = [ref]
    elif variant == "whole_body_other_family":
        other_voice = voice_for(rng, other, voice.sender, voice.day, full_names=True)
        paragraphs, _ = case_paragraphs(rng, other_voice, count=2)
        lead, evidence = _about_other(rng, other, voice, rng.choice(("names", "reference")))
        rewrite(
            draft,
            [
                rng.choice(("Further to our conversation,", "I hope you are well.", "")),
                lead,
                *paragraphs,
                rng.choice(CLOSINGS),
            ],
        )
        draft.attachments = []
        why = f"body is about case {other.case_id} ({other.surname} family), sent to case {case.case_id}'s {to[0].role}"
    else:
        paragraph, evidence = _about_other(
            rng, other, voice, rng.choice(("names", "names", "reference"))
        )
        draft.body.paragraphs.insert(
            rng.randint(1, max(1, len(draft.body.paragraphs) - 1)), paragraph
        )
        why = f"a paragraph about case {other.case_id} ({', '.join(evidence)}) pasted into mail for case {case.case_id}"
        if variant == "wrong_thread_reply":
            author = to[0]
            reader = author if author.parental else None
            reply_voice = voice_for(rng, case, voice.sender, b.day, reader)
            quote, subject0 = _incoming(b, author, reply_voice, draft.subject)
            draft.quote = quote
            draft.subject = reply_subject(rng, subject0)
            rewrite(
                draft,
                [
                    rng.choice(("Thanks for your email.", "Thank you for letting me know.", "")),
                    paragraph,
                ],
            )
            why = f"reply in case {case.case_id}'s thread whose new text is about case {other.case_id} ({', '.join(evidence)})"
    return Item(
        "content_other_case", variant, why, draft, case.case_id, other.case_id, None, None, evidence
    )


def _strip_references(draft: Draft, case: Case) -> None:
    for ref in case.references:
        draft.subject = draft.subject.replace(ref, "").strip(" -–[]:/()")
        draft.body.paragraphs = [p for p in draft.body.paragraphs if ref not in p]


def attachment_other_case(b: Builder) -> Item:
    world, rng = b.world, b.rng
    variant = rng.choices(
        (
            "other_report_with_reference",
            "other_report_names_only",
            "letter_to_other_family",
            "filename_says_this_case",
        ),
        (40, 20, 20, 20),
    )[0]
    case = world.pick_case(rng, lambda c: bool(c.reachable()))
    to, cc = _ordinary_recipients(rng, case)
    other = _other_case(world, rng, case, to + cc)
    draft, voice, _ = _case_item(b, case, to, cc, n_attachments=rng.choice((0, 0, 1, 2)))
    other_voice = voice_for(rng, other, voice.sender, voice.day, full_names=True)
    if variant == "letter_to_other_family":
        addressee = rng.choice([p for p in (other.mother, other.father) if p.postal])
        wrong, evidence = document_for(
            rng, other, other_voice, addressee=addressee, with_reference=rng.random() < 0.5
        )
        evidence.append(addressee.name)
    else:
        wrong, evidence = document_for(
            rng,
            other,
            other_voice,
            kind=rng.choice([k for k in DOCUMENT_KINDS if k != "Letter"]),
            with_reference=variant == "other_report_with_reference"
            or (variant == "filename_says_this_case" and rng.random() < 0.5),
            filename_case=case if variant == "filename_says_this_case" else None,
        )
    wrong = attach(draft, wrong, rng.randint(0, len(draft.attachments)))
    draft.body.paragraphs.insert(
        1 if len(draft.body.paragraphs) > 1 else 0,
        rng.choice(
            (
                "Please find attached my report.",
                "I attach the letter we discussed.",
                "Please see the attached.",
                "Attached for your information.",
                f"I attach the {wrong.filename.rsplit('.', 1)[0]}.",
            )
        ),
    )
    why = f"attachment {wrong.filename!r} is about case {other.case_id} ({', '.join(evidence[:3])}); recipients and body are case {case.case_id}"
    return Item(
        "attachment_other_case",
        variant,
        why,
        draft,
        case.case_id,
        other.case_id,
        None,
        wrong.filename,
        evidence,
    )


def _withheld_pair(case: Case) -> list[tuple[Party, Party]]:
    """(confidential party, a reachable party it is withheld from)."""
    return [
        (conf, rec)
        for conf in case.parties
        if conf.withheld_from and (conf.postal or conf.emails)
        for rec in case.parties
        if rec.party_id in conf.withheld_from and rec.reachable
    ]


def attach(draft: Draft, attachment: Attachment, position: int) -> Attachment:
    """Add an attachment; a name already taken gets " (1)" the way downloads do."""
    taken = {a.filename for a in draft.attachments}
    if attachment.filename in taken:
        stem, _, ext = attachment.filename.rpartition(".")
        attachment = replace(attachment, filename=f"{stem} (1).{ext}")
    draft.attachments.insert(position, attachment)
    return attachment


def insert_early(draft: Draft, paragraph: str) -> None:
    """Put a paragraph after the opening line, where staff add what they meant to say."""
    draft.body.paragraphs.insert(1 if len(draft.body.paragraphs) > 1 else 0, paragraph)


def _leak_in_body(
    rng: random.Random, draft: Draft, voice: Voice, conf: Party, variant: str
) -> list[str]:
    """Write the confidential party's address (or email) into the body; the strings leaked."""
    lines, postcode = conf.postal[0] if conf.postal else ((), "")
    name = conf.formal if rng.random() < 0.6 else conf.first
    if variant == "body_email":
        insert_early(
            draft,
            rng.choice(
                (
                    f"If you need to arrange anything directly, {conf.first}'s email is {conf.email}.",
                    f"You can reach {name} at {conf.email}.",
                    f"I have copied in {name} ({conf.email}) for information.",
                )
            ),
        )
        return [conf.email]
    if variant == "body_postal_address":
        where = ", ".join((*lines, postcode))
        evidence = [*lines[:-1], postcode]
    elif rng.random() < 0.5:
        where = ", ".join(lines)
        evidence = list(lines[:-1])
    else:
        where = f"the {postcode} area ({lines[-1]})"
        evidence = [postcode]
    child, weekday, date = voice.facts["child"], voice.facts["weekday"], voice.facts["date"]
    insert_early(
        draft,
        rng.choice(
            (
                f"{name} has asked me to let you know that she has moved to {where}.",
                f"For the handover on {weekday}, {child} will be collected from {where}.",
                f"{name}'s new address is {where}; please update your records.",
                f"Post for {conf.first} should now go to {where}.",
                f"I visited {name} and {child} at home ({where}) on {date}.",
            )
        ),
    )
    return evidence


def confidential_leak(b: Builder) -> Item:
    world, rng = b.world, b.rng
    case = world.pick_case(rng, lambda c: bool(_withheld_pair(c)))
    conf, rec = rng.choice(_withheld_pair(case))
    options = ["visible_in_to_cc", "forwarded_message"] if conf.reachable else []
    if conf.postal:
        options += ["body_postal_address", "body_postal_address", "attachment_letter", "body_partial_address"]  # fmt: skip
    if conf.emails:
        options.append("body_email")
    variant = rng.choice(options)
    draft, voice, _ = _case_item(b, case, [rec])
    lines, postcode = conf.postal[0] if conf.postal else ((), "")
    to_whom = f"to {rec.role} {rec.name}, from whom it is withheld"
    if variant.startswith("body_"):
        evidence = _leak_in_body(rng, draft, voice, conf, variant)
        why = (
            f"{conf.name}'s withheld contact details ({'; '.join(evidence)}) in the body {to_whom}"
        )
    elif variant == "visible_in_to_cc":
        (draft.to if rng.random() < 0.5 else draft.cc).append(address_of(rng, conf))
        draft.body.greeting = rng.choice(
            ("Dear both,", "Dear all,", f"Dear {rec.first} and {conf.first},")
        )
        evidence = [conf.email]
        why = f"{conf.name}'s withheld email {conf.email} visible in To/Cc {to_whom}"
    elif variant == "attachment_letter":
        letter, _ = document_for(rng, case, voice, addressee=conf)
        letter = attach(draft, letter, 0)
        insert_early(
            draft,
            rng.choice(
                (
                    "For your information I attach a copy of my letter.",
                    "Please see attached letter.",
                    "I attach the letter sent out today.",
                )
            ),
        )
        evidence = [*lines[:-1], postcode]
        why = f"attached letter {letter.filename!r} carries {conf.name}'s withheld address ({postcode}) {to_whom}"
    else:
        message = b.party_message(conf, voice_for(rng, case, voice.sender, b.day, conf))
        evidence = [conf.email]
        if conf.postal and rng.random() < 0.5:
            message.signature = [conf.name, *lines, postcode]
            evidence.append(postcode)
        sender = [staff_address(rng, voice.sender)]
        draft.quote = b.forward_quote(
            address_of(rng, conf, display=conf.name), message, draft.subject, sender
        )
        draft.subject = forward_subject(rng, draft.subject)
        rewrite(
            draft,
            [
                rng.choice(
                    (
                        "Please see below.",
                        "FYI, see the email below.",
                        f"Please see below from {conf.formal} regarding the arrangements.",
                    )
                )
            ],
        )
        why = f"forward of {conf.name}'s own mail ({'; '.join(evidence)} in the quoted text) {to_whom}"
    return Item(
        "confidential_address_leak",
        variant,
        why,
        draft,
        case.case_id,
        None,
        conf.party_id,
        rec.email,
        evidence,
    )


def visible_recipients(b: Builder) -> Item:
    rng = b.rng
    variant = rng.choices(
        ("circular_all_in_to", "circular_all_in_cc", "bcc_half_done", "two_families"),
        (40, 30, 15, 15),
    )[0]
    sender = rng.choice(b.world.senders)
    parents = _household_parents(b, sender, 2 if variant == "two_families" else rng.randint(3, 10))
    subject, body = _circular(b, sender)
    addresses = [address_of(rng, p) for p in parents]
    if variant == "circular_all_in_to":
        draft = b.draft(sender, addresses, subject, body)
    elif variant == "circular_all_in_cc":
        draft = b.draft(sender, [staff_address(rng, sender)], subject, body, cc=addresses)
    elif variant == "bcc_half_done":
        cut = rng.randint(2, len(addresses))
        draft = b.draft(
            sender,
            [staff_address(rng, sender)],
            subject,
            body,
            cc=addresses[:cut],
            bcc=addresses[cut:],
        )
    else:
        body.greeting = rng.choice(
            ("Dear both,", f"Dear {parents[0].first} and {parents[1].first},")
        )
        draft = b.draft(sender, addresses, subject, body)
    cases = sorted({p.case_id for p in parents})
    why = f"{len(parents)} parents of {len(cases)} different cases visible to each other ({variant.replace('_', ' ')})"
    return Item(
        "visible_recipients",
        variant,
        why,
        draft,
        None,
        None,
        None,
        None,
        [p.email for p in parents],
    )


UNKNOWN_LAST = ("Okonkwo", "Lindgren", "Brannigan", "Wozniak", "Fairclough", "Quayle", "Oduya", "Tennant", "Villiers", "Abernethy", "Pryce-Jones", "Hollingworth")  # fmt: skip


def unknown_recipient(b: Builder) -> Item:
    world, rng = b.world, b.rng
    variant = rng.choices(
        (
            "new_social_worker",
            "relative",
            "interpreter",
            "expert",
            "school_staff",
            "contact_centre",
        ),
        (30, 20, 15, 15, 10, 10),
    )[0]
    case = world.pick_case(rng, lambda c: bool(c.reachable()))
    first, last = rng.choice(FIRST_NAMES), rng.choice(UNKNOWN_LAST)
    display = f"{first} {last}"
    if variant == "new_social_worker":
        sw = next(iter(case.by_role("social_worker")), None)
        domain = (
            sw.email.split("@")[1]
            if sw
            else rng.choice(COUNCILS).split()[0].lower() + ".example.gov.uk"
        )
        address = f"{first[0].lower()}.{last.lower().replace('-', '')}@{domain}"
    elif variant == "relative":
        last = rng.choice((case.mother.surname, case.father.surname))
        address = f"{rng.choice(('nana', 'grandma', 'auntie', 'uncle'))}{first.lower()}{rng.randint(50, 75)}@{rng.choice(('btinternet.example', 'sky.example', 'homemail.example'))}"
        display = rng.choice((f"{first} {last}", f"Nana {first}", ""))
    elif variant == "interpreter":
        address = f"{rng.choice(('bookings', 'interpreting', first.lower()))}@{rng.choice(('langline-uk', 'word360', 'pennine-interpreters'))}.example"
        display = rng.choice(("", f"{first} {last}", "Interpreting Bookings"))
    elif variant == "expert":
        address = f"dr.{last.lower().replace('-', '')}@{rng.choice(('pennine-psychology', 'northern-assessments', 'family-experts'))}.example"
        display = f"Dr {first} {last}"
    elif variant == "school_staff":
        school = next((p for p in case.parties if p.role == "school"), None)
        domain = (
            school.email.split("@")[1]
            if school
            else "-".join(case.school.lower().replace("'", "").split()[:2]) + ".example.sch.uk"
        )
        address = f"{first[0].lower()}{last.lower().replace('-', '')}@{domain}"
    else:
        address = "bookings@" + re.sub(r"[^a-z]", "", case.centre[0].lower())[:18] + ".example.org"
        display = case.centre[0]
    if world.owners(address) or world.near_verified(address, 3):
        raise NoCandidate("unknown address too close to a verified one")
    draft, voice, _ = _case_item(b, case, [], sensitive=True if rng.random() < 0.75 else None)
    draft.to = [Address(display_name=display, addr_spec=address)]
    draft.body.greeting = rng.choice(
        (
            f"Dear {first},",
            f"Hi {first},",
            "Hello,",
            f"Dear {display}," if display else "Dear Sir/Madam,",
        )
    )
    evidence = _identifying(world, rng, case, draft, voice)
    why = f"case {case.case_id} details to {address}, which belongs to no party ({variant.replace('_', ' ')})"
    return Item(
        "recipient_unknown", variant, why, draft, case.case_id, None, None, address, evidence
    )


def contact_not_allowed(b: Builder) -> Item:
    world, rng = b.world, b.rng

    def barred(c: Case) -> list[Party]:
        return [p for p in c.parties if p.emails and not p.contact_allowed]

    case = world.pick_case(rng, lambda c: bool(barred(c)))
    party = rng.choice(barred(case))
    sender = case.staff
    if party.role == "child":
        variant = rng.choice(("teenager_reply", "teenager_direct", "teenager_cc"))
    else:
        variant = rng.choice(("respondent_direct", "respondent_direct", "respondent_cc"))
    if variant.endswith("_cc"):
        main = [p for p in case.reachable() if p is not party and not _hides(case, [p, party])]
        sol = case.solicitor_for(case.father) if party.role == "respondent" else None
        to = [sol] if sol and sol.reachable else [rng.choice(main or case.reachable())]
        draft, _, _ = _case_item(b, case, to, sender=sender)
        draft.cc.append(address_of(rng, party))
    else:
        draft, voice, _ = _case_item(
            b,
            case,
            [party],
            reader=party,
            sender=sender,
            thread=False if party.role == "child" else None,
        )
        if party.role == "child":
            draft.body.greeting = rng.choice(
                (f"Hi {party.first},", f"Dear {party.first},", f"Hello {party.first}")
            )
            rewrite(
                draft,
                [
                    rng.choice(
                        (
                            "Thank you for your message. I will make sure the judge knows what you have told me.",
                            "It was good to meet you at school last week. I wanted to let you know what happens next.",
                            "Thanks for getting in touch. I will be writing my report for the court soon and I will include what you said about weekends.",
                            "I am sorry nobody has explained what is happening; the next hearing is after half term and I will come and see you before then.",
                        )
                    )
                ],
            )
            draft.attachments = []
            if variant == "teenager_reply":
                quote, subject0 = _incoming(
                    b,
                    party,
                    voice,
                    rng.choice(("court", "hi", "question", "my dad", "weekends")),
                )
                draft.quote = quote
                draft.subject = reply_subject(rng, subject0)
    why = f"{party.role} {party.name} <{party.email}> is recorded contact_allowed: false" + (
        " (copied in)" if variant.endswith("_cc") else ""
    )
    return Item(
        "contact_not_allowed", variant, why, draft, case.case_id, None, party.party_id, party.email
    )


def unreadable(b: Builder) -> Item:
    world, rng = b.world, b.rng
    variant = rng.choices(
        ("encrypted_pdf", "corrupt_docx", "scanned_pdf", "image_attachment"), (30, 20, 25, 25)
    )[0]
    case = world.pick_case(rng, lambda c: bool(c.reachable()))
    to, cc = _ordinary_recipients(rng, case)
    draft, voice, _ = _case_item(b, case, to, cc, n_attachments=rng.choice((0, 0, 1)))
    text_lines = [
        ORGANISATION,
        f"Case {case.case_id}",
        f"Child: {case.children[0].name}",
        "Consent to share information",
        f"Signed: {case.mother.name}",
        f"Date: {voice.facts['date']}",
    ]
    if variant == "encrypted_pdf":
        paragraphs, _ = case_paragraphs(rng, voice, count=3)
        data = pdf_bytes(
            "Section 7 report",
            [f"Case number: {case.case_id}"],
            paragraphs,
            password=f"{case.surname}{rng.randint(10, 99)}",
        )
        bad = Attachment(
            rng.choice(
                (
                    f"S7 report {case.surname} (protected).pdf",
                    "Report - password protected.pdf",
                    f"{case.case_id} report.pdf",
                )
            ),
            "application/pdf",
            data,
            case.case_id,
            "encrypted PDF",
        )
        note = rng.choice(
            (
                "The report is password protected; I will send the password separately.",
                "Password to follow by text.",
                "Attached (encrypted).",
            )
        )
    elif variant == "corrupt_docx":
        good, _ = document_for(rng, case, voice, fmt="docx")
        bad = Attachment(
            good.filename, good.content_type, corrupt(rng, good.data), case.case_id, "corrupt DOCX"
        )
        note = rng.choice(
            (
                "Please find attached the chronology.",
                "Attached is the updated document.",
                "I attach the draft.",
            )
        )
    elif variant == "scanned_pdf":
        bad = Attachment(
            rng.choice(
                (
                    f"Scan_{b.day:%Y%m%d}_{rng.randint(100000, 999999)}.pdf",
                    "scan0001.pdf",
                    "Signed consent form.pdf",
                    "Doc1 scanned.pdf",
                )
            ),
            "application/pdf",
            scanned_pdf_bytes(rng, text_lines),
            case.case_id,
            "scanned PDF without text",
        )
        note = rng.choice(
            (
                "Please find attached the signed form (scanned).",
                "Scanned copy attached.",
                "I attach a scan of the signed agreement.",
            )
        )
    else:
        kind = rng.choice(("jpeg", "jpeg", "png"))
        name = rng.choice(
            (
                f"IMG_{rng.randint(1000, 9999)}",
                f"Screenshot {b.day:%Y-%m-%d} at {rng.randint(10, 17)}.{rng.randint(10, 59)}",
                "photo",
                "image001",
            )
        )
        ctype = "image/jpeg" if kind == "jpeg" else "image/png"
        bad = Attachment(
            f"{name}.{'jpg' if kind == 'jpeg' else 'png'}",
            ctype,
            photo_bytes(rng, text_lines, kind),
            case.case_id,
            f"image attachment {ctype}",
        )
        note = rng.choice(
            (
                "I attach a photo of the letter from the school.",
                "Photo of the signed agreement attached.",
                "See screenshot attached of the messages.",
            )
        )
    bad = attach(draft, bad, rng.randint(0, len(draft.attachments)))
    insert_early(draft, note)
    why = f"attachment {bad.filename!r} cannot be read: {bad.problem}"
    return Item(
        "unreadable_content",
        variant,
        why,
        draft,
        case.case_id,
        None,
        None,
        bad.filename,
        [bad.problem or ""],
    )


BUILDERS: dict[str, Callable[[Builder], Item]] = {
    "recipient_other_case": other_case_recipient,
    "recipient_lookalike": lookalike_recipient,
    "display_name_mismatch": display_name_mismatch,
    "content_other_case": content_other_case,
    "attachment_other_case": attachment_other_case,
    "confidential_address_leak": confidential_leak,
    "visible_recipients": visible_recipients,
    "recipient_unknown": unknown_recipient,
    "contact_not_allowed": contact_not_allowed,
    "unreadable_content": unreadable,
}


def make_item(world: World, cls: str, number: int, seed: int) -> tuple[Item, bytes]:
    """Item `number` of class `cls`: its label and the message's bytes (deterministic)."""
    rng = random.Random(f"{seed}:{cls}:{number}")
    for _ in range(50):
        builder = Builder(world, rng)
        try:
            if cls == CLEAN:
                make = rng.choices([f for f, _ in CLEAN_VARIANTS], [w for _, w in CLEAN_VARIANTS])[
                    0
                ]
            else:
                make = BUILDERS[cls]
            item = make(builder)
        except NoCandidate:
            continue
        message = build_message(rng, item.draft)
        return item, message.as_bytes(policy=SMTP)
    raise RuntimeError(f"could not build a {cls} item; generate more cases")


# -- the corpus on disk ------------------------------------------------------------------------


def generator_digest() -> str:
    """Changes whenever this file does, so a corpus written by an older generator is not reused."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class CorpusParams:
    cases: int
    items_per_class: int
    seed: int
    clean_items: int

    def as_json(self) -> dict[str, Any]:
        """The parameters as `corpus.json` records them, with the generator's own digest."""
        return {
            "generator": generator_digest(),
            "format": FORMAT_VERSION,
            "cases": self.cases,
            "items_per_class": self.items_per_class,
            "seed": self.seed,
            "clean_items": self.clean_items,
        }


# The world a forked generator process builds items from (set before the fork).
_SHARED: dict[str, World] = {}


def _build(job: tuple[str, int, int]) -> tuple[dict[str, Any], bytes]:
    cls, number, seed = job
    item, data = make_item(_SHARED["world"], cls, number, seed)
    return label_of(f"mail/{cls}/{number:04d}.eml", item), data


def generate(
    out: Path,
    params: CorpusParams,
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> dict[str, int]:
    """Write the corpus for `params` under `out` (replacing any earlier one); the count per class.

    Each item has its own random generator, so `jobs` processes write the same bytes as one.
    """
    world = World(params.seed, params.cases)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "mail", ignore_errors=True)
    (out / "cases.jsonl").write_text("\n".join(world.case_lines()) + "\n", encoding="utf-8")
    (out / "staff.jsonl").write_text("\n".join(world.staff_lines()) + "\n", encoding="utf-8")
    counts = {c: params.clean_items if c == CLEAN else params.items_per_class for c in CLASSES}
    for cls in CLASSES:
        (out / "mail" / cls).mkdir(parents=True)
    work = [(c, n, params.seed) for c in CLASSES for n in range(1, counts[c] + 1)]
    _SHARED["world"] = world
    pool = multiprocessing.get_context("fork").Pool(jobs) if jobs > 1 else None
    try:
        built = pool.imap(_build, work, chunksize=8) if pool else map(_build, work)
        with (out / "labels.jsonl").open("w", encoding="utf-8") as labels:
            for (cls, number, _), (label, data) in zip(work, built, strict=True):
                (out / label["file"]).write_bytes(data)
                labels.write(json.dumps(label, ensure_ascii=False) + "\n")
                if progress and number == counts[cls]:
                    progress(f"{cls}: {number} items")
    finally:
        if pool:
            pool.close()
            pool.join()
        _SHARED.clear()
    (out / "corpus.json").write_text(
        json.dumps(params.as_json() | {"counts": counts}, indent=2) + "\n"
    )
    return counts


def label_of(name: str, item: Item) -> dict[str, Any]:
    draft = item.draft
    return {
        "file": name,
        "class": item.cls,
        "expect": EXPECT[item.cls],
        "sender": draft.sender.email,
        "why": item.why,
        "variant": item.variant,
        "case_id": item.case_id,
        "other_case_id": item.other_case_id,
        "party_id": item.party_id,
        "target": item.target,
        "evidence": item.evidence,
        "recipients": {
            "to": [a.addr_spec for a in draft.to],
            "cc": [a.addr_spec for a in draft.cc],
            "bcc": [a.addr_spec for a in draft.bcc],
        },
        "attachments": [a.filename for a in draft.attachments],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="directory to write the corpus into"
    )
    parser.add_argument("--cases", type=int, default=2000, help="cases in the generated record")
    parser.add_argument(
        "--items-per-class", type=int, default=200, help="items for each mistake class"
    )
    parser.add_argument(
        "--clean-items", type=int, help="clean items (default: twice --items-per-class)"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--jobs", type=int, default=1, help="processes writing items (same output)")
    args = parser.parse_args(argv)
    params = CorpusParams(
        args.cases, args.items_per_class, args.seed, args.clean_items or 2 * args.items_per_class
    )
    started = time.perf_counter()
    counts = generate(
        args.out, params, progress=lambda line: print(line, file=sys.stderr), jobs=args.jobs
    )
    print(
        f"{sum(counts.values())} items, {args.cases} cases in {args.out} ({time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
