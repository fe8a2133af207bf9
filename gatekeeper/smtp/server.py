"""The SMTP side of the relay: who may send, as whom, and the reply to each command.

The handler is small on purpose: it checks identity (AUTH or a trusted
network) and sender addresses, then hands the message to `Intake` and
returns its reply. It never blocks the event loop: passwords are checked and
the store is read in threads, the gate runs in worker processes.
"""

from __future__ import annotations

import asyncio
import binascii
import ipaddress
import logging
import re
import ssl
from base64 import b64decode
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any, AnyStr, TypeVar

from aiosmtpd.proxy_protocol import ProxyData
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from gatekeeper.smtp import status
from gatekeeper.smtp.auth import StaffDirectory, StaffIdentity
from gatekeeper.smtp.headers import HeaderFacts
from gatekeeper.smtp.intake import ClientInfo, Intake, Submission
from gatekeeper.smtp.metrics import RelayMetrics
from gatekeeper.smtp.outbound import record_audit
from gatekeeper.smtp.status import ENHANCED
from gatekeeper.smtp.throttle import AuthThrottle, client_key, login_key, minutes
from gatekeeper.smtp.writer import StoreWriter

log = logging.getLogger(__name__)

# More than any real message has; a longer list is a mistake or abuse.
MAX_RECIPIENTS = 500
# Seconds a load balancer's connection has to send its PROXY header.
PROXY_SECONDS = 10.0

T = TypeVar("T")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedNetworks:
    """Client networks allowed to relay without AUTH (a front MTA that authenticated already)."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(c, strict=False) for c in cidrs
        )

    def __contains__(self, address: object) -> bool:
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


# `<local@domain>` with both parts plain dot-atoms of ASCII characters: how nearly every
# client writes MAIL FROM and RCPT TO.
_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
_PLAIN_PATH = re.compile(rf"<((?:{_ATEXT}(?:\.{_ATEXT})*)@(?:{_ATEXT}(?:\.{_ATEXT})*))>")


class RelaySMTP(SMTP):
    """aiosmtpd's protocol, with its own bare replies given RFC 3463 enhanced codes."""

    # RFC 5322 allows 998 octets a line, but real clients send longer; like Postfix, take
    # them rather than refuse the message (they are relayed byte for byte as sent).
    line_length_limit = 1024 * 1024

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parsing (the email package's RFC 5322 parser, a tenth of a
        millisecond an address), answered directly for a plain `<local@domain>`: the
        parser gives the address as written and the rest after any spaces or tabs."""
        plain = _PLAIN_PATH.match(arg)
        if plain is None:
            return super()._getaddr(arg)
        rest = arg[plain.end() :]
        if rest[:1] in (" ", "\t"):
            rest = rest.lstrip()  # the parser skips folding white space, of any kind
        if rest[:1] == "(":
            return super()._getaddr(arg)  # a comment: the parser reads it
        address = plain.group(1)
        local = address.rpartition("@")[0]
        if self.local_part_limit and len(local) > self.local_part_limit:
            return None, None
        return address, rest

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            await super().push(ENHANCED.get(status, status))
        else:
            await super().push(status)

    @property
    def uses_tls(self) -> bool:
        return self._tls_protocol is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # STARTTLS starts a new session, which aiosmtpd gives no PROXY data: without this
        # the client would be judged by the balancer's address from then on.
        proxy = self.session.proxy_data if self.session is not None else None
        super().connection_made(transport)
        if proxy is not None and self.session is not None:
            self.session.proxy_data = proxy


class RelayHandler:
    """aiosmtpd hooks: each returns the reply string, as aiosmtpd expects."""

    def __init__(
        self,
        intake: Intake,
        *,
        directory: StaffDirectory,
        trusted: TrustedNetworks,
        metrics: RelayMetrics,
        store: Executor,
        writer: StoreWriter,
        throttle: AuthThrottle | None = None,
        proxies: TrustedNetworks | None = None,
    ) -> None:
        self.intake = intake
        self.proxies = proxies or TrustedNetworks(())  # load balancers sending PROXY headers
        self.directory = directory
        self.trusted = trusted
        self.metrics = metrics
        self.store = store
        self.writer = writer
        self.throttle = throttle or AuthThrottle(0, 0.0)
        self.active = 0  # messages between end of DATA and reply, for a clean shutdown

    async def _in_store(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.store, call, *args)

    async def handle_PROXY(
        self, server: RelaySMTP, session: Session, envelope: Envelope, proxy: ProxyData
    ) -> bool:
        """Take a PROXY header only from a configured load balancer: from anyone else it
        would let a client choose the address it is judged by."""
        balancer = _connected(session)
        if balancer in self.proxies and proxy.valid:
            return True
        self.metrics.refusals.labels("proxy_refused").inc()
        log.warning("refused a PROXY header", extra={"from": balancer, "valid": proxy.valid})
        return False

    # -- AUTH: our own PLAIN and LOGIN, so the argon2 check runs off the event loop --

    async def auth_PLAIN(self, server: RelaySMTP, args: list[str]) -> AuthResult:
        if await self._throttled(server, [client_key(_client(server))], None):
            return AuthResult(success=False, handled=True)
        blob: Any = await server.challenge_auth("") if len(args) == 1 else _b64(args[1])
        if len(args) > 1 and blob is None:
            await server.push("501 5.5.2 Cannot decode base64")
        if not isinstance(blob, bytes):
            return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await server.push("501 5.5.2 Cannot split the PLAIN credentials")
            return AuthResult(success=False, handled=True)
        return await self._authenticate(server, parts[1], parts[2])

    async def auth_LOGIN(self, server: RelaySMTP, args: list[str]) -> AuthResult:
        if await self._throttled(server, [client_key(_client(server))], None):
            return AuthResult(success=False, handled=True)
        login: Any = (
            await server.challenge_auth(server.AuthLoginUsernameChallenge)
            if len(args) == 1
            else _b64(args[1])
        )
        if len(args) > 1 and login is None:
            await server.push("501 5.5.2 Cannot decode base64")
        if not isinstance(login, bytes):
            return AuthResult(success=False, handled=True)
        password = await server.challenge_auth(server.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._authenticate(server, login, password)

    async def _authenticate(self, server: RelaySMTP, login: bytes, password: bytes) -> AuthResult:
        name = login.decode("utf-8", "replace")
        keys = [client_key(_client(server)), login_key(name)]
        if not self.throttle.begin(keys):  # refused unseen: no answer about this password
            await self._throttled(server, keys, name)
            return AuthResult(success=False, handled=True)
        failed = False  # the store failing to answer is no failed sign-in
        try:
            identity = await self._in_store(
                self.directory.authenticate, name, password.decode("utf-8", "replace")
            )
            failed = identity is None
        finally:
            self.throttle.end(keys, failed=failed)
        if identity is None:
            self.metrics.refusals.labels("auth_failed").inc()
            await self._audit("relay.auth_failed", server.session, None, {"login": name[:254]})
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=identity)

    async def _throttled(self, server: RelaySMTP, keys: list[str], login: str | None) -> bool:
        """Refuse AUTH with 454 if `keys` have failed too often lately; whether it did."""
        wait = self.throttle.wait(keys)
        if not wait:
            return False
        self.metrics.refusals.labels("auth_throttled").inc()
        if self.throttle.first_refusal(keys):
            details = {"login": login[:254] if login is not None else None}
            await self._audit("relay.auth_throttled", server.session, None, details)
        await server.push(status.reply(status.AUTH_THROTTLED, wait=minutes(wait)))
        return True

    # -- the transaction --

    async def handle_MAIL(
        self,
        server: RelaySMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        identity = _identity(session)
        if identity is None:
            if _peer(session) not in self.trusted:
                self.metrics.refusals.labels("auth_required").inc()
                return status.AUTH_REQUIRED
        elif not identity.may_send_as(address):
            self.metrics.refusals.labels("sender_not_yours").inc()
            await self._audit("relay.sender_refused", session, identity, {"mail_from": address})
            return status.reply(status.SENDER_NOT_YOURS, address=address)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return status.OK_SENDER

    async def handle_RCPT(
        self,
        server: RelaySMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        local, at, domain = address.rpartition("@")
        if not (at and local and domain):
            return status.reply(status.RECIPIENT_INVALID, address=address)
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return status.TOO_MANY_RECIPIENTS
        if address.casefold() not in {r.casefold() for r in envelope.rcpt_tos}:
            envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return status.OK_RECIPIENT

    async def handle_DATA(self, server: RelaySMTP, session: Session, envelope: Envelope) -> str:
        raw: bytes = envelope.original_content or b""
        headers = HeaderFacts.of(raw)
        identity = _identity(session)
        if identity is not None:
            refusal = _from_refusal(identity, headers)
            if refusal:
                self.metrics.refusals.labels("from_not_yours").inc()
                await self._audit(
                    "relay.from_refused", session, identity, {"from": list(headers.from_addresses)}
                )
                return refusal
            sender, team = identity.email, identity.team
        else:
            sender = envelope.mail_from or ""
            remembered, known = self.directory.remembered(sender)
            if not remembered:
                known = await self._in_store(self.directory.identity, sender)
            team = known.team if known else None
        submission = Submission(
            raw=raw,
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            sender=sender,
            team=team,
            headers=headers,
            client=ClientInfo(
                address=_peer(session),
                helo=session.host_name or "",
                tls=server.uses_tls,
                login=identity.email if identity else None,
            ),
            smtputf8=bool(envelope.smtp_utf8),
            options=tuple(envelope.mail_options),
        )
        self.active += 1
        try:
            return await self.intake.receive(submission)
        finally:
            self.active -= 1

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s", error, exc_info=error)
        return status.SERVER_ERROR

    async def _audit(
        self,
        action: str,
        session: Session | None,
        identity: StaffIdentity | None,
        details: dict[str, Any],
    ) -> None:
        actor = identity.email if identity else None
        remote = _peer(session) if session else None
        try:
            await self.writer.write(
                record_audit, action, actor=actor, details=details, remote=remote
            )
        except Exception:
            log.exception("could not record %s", action)


def _identity(session: Session) -> StaffIdentity | None:
    data = session.auth_data if session.authenticated else None
    return data if isinstance(data, StaffIdentity) else None


def _client(server: RelaySMTP) -> str:
    return _peer(server.session) if server.session is not None else ""


def _peer(session: Session) -> str:
    """The client's address: as a load balancer's PROXY header gives it, else as connected."""
    proxy = session.proxy_data
    if isinstance(proxy, ProxyData) and proxy.src_addr:
        return str(proxy.src_addr)
    return _connected(session)


def _connected(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")


def _b64(text: str) -> bytes | None:
    try:
        return b64decode(text.encode(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _from_refusal(identity: StaffIdentity, headers: HeaderFacts) -> str | None:
    """Why the From: header is not the sender's to use, or None when it is."""
    if not headers.from_addresses:
        return status.FROM_MISSING
    for address in headers.from_addresses:
        if not identity.may_send_as(address):
            return status.reply(status.FROM_NOT_YOURS, address=address)
    return None


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """The server side of STARTTLS: TLS 1.2 or newer, with the configured certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file or None)
    return context


def protocol_factory(
    handler: RelayHandler,
    *,
    hostname: str,
    data_size_limit: int,
    tls: ssl.SSLContext | None,
    loop: asyncio.AbstractEventLoop,
    on_open: Callable[[RelaySMTP], None],
    on_close: Callable[[RelaySMTP], None],
    proxy_protocol: bool = False,
) -> Callable[[], RelaySMTP]:
    """A new `RelaySMTP` per connection, with the relay's fixed choices."""

    class Counted(RelaySMTP):
        counted = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if not self.counted:
                self.counted = True
                on_open(self)
            super().connection_made(transport)

        def connection_lost(self, error: Exception | None) -> None:
            # aiosmtpd may report a failed TLS handshake's loss twice; count it once.
            if self.counted:
                self.counted = False
                on_close(self)
            super().connection_lost(error)

    def make() -> RelaySMTP:
        return Counted(
            handler,
            data_size_limit=data_size_limit,
            enable_SMTPUTF8=True,
            decode_data=False,  # bytes as sent: 8BITMIME intact, stored byte for byte
            hostname=hostname,
            ident="Gatekeeper",
            tls_context=tls,
            require_starttls=False,  # a trusted front MTA may speak plain SMTP on a LAN
            auth_required=False,  # enforced at MAIL, where trusted networks are exempt
            auth_require_tls=True,
            timeout=300,
            loop=loop,
            proxy_protocol_timeout=PROXY_SECONDS if proxy_protocol else None,
        )

    return make
