"""Real SMTP peers for the relay tests: smtp-sink, a private Postfix, and the relay itself.

Everything runs on loopback as a real process: `smtp-sink` (capturing each
message to a file) or a private Postfix instance as the upstream, and
`gatekeeper relay` started as an administrator would, with settings in its
environment. Polling helpers wait for something a user would notice (a message
arriving, a port opening); their time limits are safety nets, not assertions.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.policy import SMTP
from email.utils import make_msgid
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from gatekeeper.passwords import hash_password
from gatekeeper.sample import SampleRecord
from gatekeeper.smtp.selfsigned import write_self_signed
from gatekeeper.store import open_store
from gatekeeper.store.correspondence import Item, OutboundMessage
from gatekeeper.store.importer import import_cases, import_staff
from gatekeeper.store.staff import set_password
from tests.conftest import POSTGRES_URL, gatekeeper_command, need_peer, need_program
from tests.pg_schema import fresh_schema

T = TypeVar("T")
PASSWORD = "correct horse battery staple"
SAMPLE_SEED = 11
SAMPLE_CASES = 60
# Clients inside the trusted network connect from this loopback address (Linux routes 127/8).
TRUSTED_SOURCE = "127.0.0.2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(check: Callable[[], T | None], what: str, limit: float = 120.0) -> T:
    """Poll `check` until it returns something truthy; fail saying `what` never happened."""
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


# -- the store ------------------------------------------------------------------------------


@contextlib.contextmanager
def store_url(kind: str, folder: Path) -> Iterator[str]:
    """A fresh database for a whole module: a SQLite file, or a PostgreSQL schema."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'gatekeeper.db'}"
        return
    need_peer(bool(POSTGRES_URL), "PostgreSQL (GATEKEEPER_TEST_POSTGRES_URL)")
    with fresh_schema(POSTGRES_URL) as url:
        yield url


@contextlib.contextmanager
def prepared_world(kind: str, folder: Path) -> Iterator[World]:
    """A `World` on a fresh store of `kind` ("sqlite" or "postgresql") in `folder`."""
    with store_url(kind, folder) as url:
        world = World.prepare(url, folder)
        try:
            yield world
        finally:
            world.engine.dispose()


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    password: str = PASSWORD


@dataclass(frozen=True)
class Scenario:
    """Addresses and text from the sample record that make the gate release, hold or block."""

    release_to: str
    release_greeting: str
    lookalike_to: str
    leak_to: str
    leak_text: str

    @classmethod
    def from_sample(cls, cases: Sequence[dict[str, Any]]) -> Scenario:
        professional = next(
            p for c in cases for p in c["parties"] if p["role"] == "solicitor" and p.get("emails")
        )
        lay = next(
            p for c in cases for p in c["parties"] if p["role"] == "applicant" and p.get("emails")
        )
        local, _, domain = lay["emails"][0].partition("@")
        leak_case, hidden = next(
            (c, p)
            for c in cases
            for p in c["parties"]
            if p.get("confidential") and p.get("withheld_from") and p.get("postal_addresses")
        )
        reader = next(
            p
            for p in leak_case["parties"]
            if p["party_id"] in hidden["withheld_from"] and p.get("emails")
        )
        address = hidden["postal_addresses"][0]
        return cls(
            release_to=professional["emails"][0],
            release_greeting=professional["name"].split()[0],
            lookalike_to=f"{local}@{domain.replace('example', 'exampel', 1)}",
            leak_to=reader["emails"][0],
            leak_text=f"{hidden['name']} now lives at {address['lines'][0]}, {address['postcode']}.",
        )


@dataclass
class World:
    """A loaded store, staff with passwords, a certificate: what every relay in a module shares."""

    database_url: str
    folder: Path
    sender: Person
    checker: Person
    colleague: Person  # staff, not a checker
    scenario: Scenario
    cert: Path
    key: Path
    engine: Engine = field(repr=False)

    @classmethod
    def prepare(cls, database_url: str, folder: Path) -> World:
        folder.mkdir(parents=True, exist_ok=True)
        engine = open_store(database_url)
        sample = SampleRecord(seed=SAMPLE_SEED)
        cases = [json.loads(line) for line in sample.case_lines(SAMPLE_CASES)]
        assert not import_cases(engine, [json.dumps(c) for c in cases]).rejected
        staff = list(sample.staff(20))
        assert not import_staff(engine, [json.dumps(s) for s in staff]).rejected
        sender = next(s for s in staff if s["roles"] == ["staff"])
        checker = next(s for s in staff if "checker" in s["roles"])
        colleague = next(s for s in staff if s["roles"] == ["staff"] and s is not sender)
        hashed = hash_password(PASSWORD)
        for person in (sender, checker, colleague):
            assert set_password(engine, person["email"], hashed)
        cert, key = write_self_signed(folder / "tls")
        return cls(
            database_url=database_url,
            folder=folder,
            sender=Person(sender["email"], sender["name"]),
            checker=Person(checker["email"], checker["name"]),
            colleague=Person(colleague["email"], colleague["name"]),
            scenario=Scenario.from_sample(cases),
            cert=cert,
            key=key,
            engine=engine,
        )

    def item(self, ref: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(Item).where(Item.ref == ref)).first()

    def outbound(self, ref: str) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(OutboundMessage)
                    .join(Item, Item.id == OutboundMessage.item_id)
                    .where(Item.ref == ref)
                    .order_by(OutboundMessage.id)
                )
            )

    def audited_from(self, action: str) -> list[str | None]:
        """The client address of each audit event `action`, oldest first."""
        with self.engine.connect() as conn:
            query = text("SELECT remote FROM audit_events WHERE action = :action ORDER BY id")
            return list(conn.execute(query, {"action": action}).scalars())

    def client_tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def auth_plain(self, smtp: smtplib.SMTP, user: str, password: str) -> str:
        """One AUTH PLAIN after STARTTLS on `smtp`: the reply, as "535 5.7.8 ..."."""
        with smtp:
            smtp.starttls(context=self.client_tls())
            smtp.ehlo()
            blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            code, text = smtp.docmd("AUTH", f"PLAIN {blob}")
            return f"{code} {text.decode()}"


# -- the upstream ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Captured:
    """A message as the upstream received it."""

    mail_from: str
    recipients: tuple[str, ...]
    content: bytes  # as sent, with line ends as LF (smtp-sink's capture format)
    helo: str = ""  # the name the sending client (a relay node) gave in EHLO

    @property
    def message(self) -> Message:
        return message_from_bytes(self.content)

    @property
    def decision_ref(self) -> str | None:
        found = re.search(rb"^X-Gatekeeper-Decision: \w+; ref=(\w+)", self.content, re.M)
        return found.group(1).decode() if found else None


def _sink_argument(line: bytes) -> str:
    value = line.split(b":", 1)[1].strip().decode()
    return value.split()[0].strip("<>") if value else ""


class SmtpSink:
    """Postfix's smtp-sink on loopback, each message captured to a file of its own."""

    def __init__(self, port: int | None = None, options: Sequence[str] = ()) -> None:
        # Outside pytest's private (0700) folders: smtp-sink writes as nobody.
        self.folder = Path(tempfile.mkdtemp(prefix="gatekeeper-sink-"))
        self.port = port or free_port()
        self.options = list(options)  # e.g. ["-W", "data:1:10"]: a slow upstream
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SmtpSink:
        program = need_program("smtp-sink")
        self.folder.chmod(0o777)
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [
                program,
                *user,
                *self.options,
                "-d",
                f"{self.folder}/%Y%m%d%H%M%S.",
                f"127.0.0.1:{self.port}",
                "100",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port), f"smtp-sink listening on {self.port}", 30)
        return self

    def messages(self) -> list[Captured]:
        out = []
        for path in sorted(self.folder.glob("*.*")):
            data = path.read_bytes()
            head, sep, rest = data.partition(b"\n\tby smtp-sink")
            if not sep:
                continue
            rest = rest.split(b"\n", 2)[2] if rest.count(b"\n") >= 2 else b""
            meta = head.split(b"\n")
            out.append(
                Captured(
                    mail_from=next(_sink_argument(m) for m in meta if m.startswith(b"X-Mail-Args")),
                    recipients=tuple(
                        _sink_argument(m) for m in meta if m.startswith(b"X-Rcpt-Args")
                    ),
                    content=rest,
                    helo=next(
                        (_sink_argument(m) for m in meta if m.startswith(b"X-Helo-Args")), ""
                    ),
                )
            )
        return out

    def to(self, recipient: str) -> list[Captured]:
        return [m for m in self.messages() if recipient in m.recipients]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivatePostfix:
    """A Postfix instance of our own on loopback: refuses some recipients, relays the rest on."""

    def __init__(self, relay_to_port: int, refuse: dict[str, str]) -> None:
        # Outside pytest's private (0700) folders: Postfix's daemons run as the postfix user.
        self.folder = Path(tempfile.mkdtemp(prefix="gatekeeper-postfix-"))
        self.folder.chmod(0o755)
        self.port = free_port()
        self.relay_to_port = relay_to_port
        self.refuse = refuse
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivatePostfix:
        postfix = need_program("postfix")
        master = "/usr/lib/postfix/sbin/master"
        need_peer(os.path.exists(master) and os.geteuid() == 0, "Postfix's master, run as root")
        f = self.folder
        (f / "queue").mkdir()
        (f / "data").mkdir(exist_ok=True)
        shutil.chown(f / "data", "postfix")
        (f / "recipients").write_text("".join(f"{r} {a}\n" for r, a in self.refuse.items()))
        (f / "main.cf").write_text(POSTFIX_MAIN.format(folder=f, relay_to_port=self.relay_to_port))
        (f / "master.cf").write_text(POSTFIX_MASTER.format(port=self.port))
        subprocess.run([postfix, "-c", str(f), "check"], check=True, capture_output=True)
        self.process = subprocess.Popen(
            [master, "-c", str(f), "-d"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        def listening() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"Postfix stopped:\n{self.log()}")
            return port_open(self.port)

        wait_for(listening, f"Postfix listening on {self.port}", 60)
        return self

    def log(self) -> str:
        path = self.folder / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # the master stops its daemons
            self.process.wait(30)
        shutil.rmtree(self.folder, ignore_errors=True)


POSTFIX_MAIN = """\
compatibility_level = 3.6
queue_directory = {folder}/queue
data_directory = {folder}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = upstream.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{relay_to_port}
smtpd_recipient_restrictions = check_recipient_access texthash:{folder}/recipients,
    permit_mynetworks, reject
maillog_file = {folder}/maillog
maillog_file_prefixes = {folder}
alias_maps =
alias_database =
smtp_tls_security_level = none
smtpd_tls_security_level = none
"""

POSTFIX_MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


# -- the relay ------------------------------------------------------------------------------


class ServiceProcess:
    """A long-running `gatekeeper` command as a real subprocess: its log, and a clean stop."""

    log_path: Path
    process: subprocess.Popen[bytes] | None
    stop_seconds = 60.0  # how long SIGTERM may take

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(self.stop_seconds)


class WebProcess(ServiceProcess):
    """`gatekeeper web` as a real subprocess, configured through its environment."""

    def __init__(self, world: World, name: str = "web-test", **settings: Any) -> None:
        self.world = world
        self.port = free_port()
        self.log_path = world.folder / f"{name}-{self.port}.log"
        values: dict[str, Any] = {
            "database_url": world.database_url,
            "web_host": "127.0.0.1",
            "web_port": self.port,
            "web_sweep_seconds": 0,
            "internal_domains": "gatekeeper.example",
            "node_name": name,
            **settings,
        }
        base = {k: v for k, v in os.environ.items() if not k.startswith("GATEKEEPER_")}
        self.env = {
            **base,
            "GATEKEEPER_DATA_DIR": str(world.folder / "data"),
            **{f"GATEKEEPER_{k.upper()}": str(v) for k, v in values.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WebProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*gatekeeper_command(), "web"], env=self.env, stdout=log, stderr=log
        )

        def healthy() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the web app exited:\n{self.log()}")
            if not port_open(self.port):
                return False
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=10) as answer:
                return bool(answer.status == 200)

        wait_for(healthy, "the web app to answer /healthz", 120)
        return self


class RelayProcess(ServiceProcess):
    """`gatekeeper relay` as a real subprocess, configured through its environment."""

    stop_seconds = 120.0  # messages in flight get their reply first

    def __init__(self, world: World, upstream_port: int, **settings: Any) -> None:
        self.world = world
        self.port = free_port()
        self.metrics_port = free_port()
        self.log_path = world.folder / f"relay-{self.port}.log"
        values: dict[str, Any] = {
            "database_url": world.database_url,
            "relay_host": "127.0.0.1",
            "relay_port": self.port,
            "metrics_port": self.metrics_port,
            "tls_cert_file": world.cert,
            "tls_key_file": world.key,
            "trusted_networks": f"{TRUSTED_SOURCE}/32",
            "upstream_host": "127.0.0.1",
            "upstream_port": upstream_port,
            "upstream_starttls": "false",
            "gate_workers": 1,
            "internal_domains": "gatekeeper.example",
            "retry_delay": 0.2,
            "node_name": "relay-test",
            "gate_timeout": 120,
            **settings,
        }
        base = {k: v for k, v in os.environ.items() if not k.startswith("GATEKEEPER_")}
        self.env = {
            **base,
            "GATEKEEPER_DATA_DIR": str(world.folder / "data"),
            **{f"GATEKEEPER_{k.upper()}": str(v) for k, v in values.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RelayProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*gatekeeper_command(), "relay"], env=self.env, stdout=log, stderr=log
        )

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the relay exited:\n{self.log()}")
            return port_open(self.port)

        wait_for(ready, "the relay to listen", 300)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def connect(self, source: str = "127.0.0.1") -> smtplib.SMTP:
        return smtplib.SMTP(
            "127.0.0.1",
            self.port,
            local_hostname="client.test",
            source_address=(source, 0),
            timeout=300,
        )

    def signed_in(self, person: Person) -> smtplib.SMTP:
        """A session after STARTTLS and AUTH as `person`."""
        smtp = self.connect()
        smtp.starttls(context=self.world.client_tls())
        smtp.login(person.email, person.password)
        return smtp

    def submit(
        self,
        person: Person | None,
        message: EmailMessage | bytes,
        recipients: Sequence[str] | None = None,
        mail_from: str | None = None,
        source: str = "127.0.0.1",
    ) -> tuple[int, str]:
        """Send one message; the relay's reply to it (to DATA, or the refusal before)."""
        raw = message if isinstance(message, bytes) else message.as_bytes()
        parsed = message_from_bytes(raw) if isinstance(message, bytes) else message
        rcpts = list(recipients or [a for a in (parsed.get("To") or "").split(",") if a.strip()])
        smtp = self.signed_in(person) if person else self.connect(source)
        smtp.ehlo()
        try:
            sender = mail_from or (person.email if person else parsed.get("From", ""))
            code, text = smtp.mail(sender)
            if code != 250:
                return code, text.decode()
            for rcpt in rcpts:
                code, text = smtp.rcpt(rcpt.strip())
                if code not in (250, 251):
                    return code, text.decode()
            try:
                code, text = smtp.data(raw)
            except smtplib.SMTPDataError as exc:
                return exc.smtp_code, exc.smtp_error.decode()
            return code, text.decode()
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()


def email(
    sender: str, to: str | Sequence[str], subject: str, body: str, **headers: str
) -> EmailMessage:
    message = EmailMessage(policy=SMTP)  # CRLF line ends, as a mail client sends them
    message["From"] = sender
    message["To"] = to if isinstance(to, str) else ", ".join(to)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="client.test")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def ref_of(reply: str) -> str:
    found = re.search(r"ref ([0-9A-Z]{8})", reply)
    assert found, f"no ref in {reply!r}"
    return found.group(1)
