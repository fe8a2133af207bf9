"""Settings: one TOML file plus environment variables.

Precedence, lowest first: built-in defaults, the configuration file
(`--config FILE`, `GATEKEEPER_CONFIG`, or `gatekeeper.toml` in the user's
config directory), then `GATEKEEPER_<NAME>` environment variables, then
command-line options. Every setting is documented in the README; a test
fails when one is not.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "gatekeeper"
ENV_PREFIX = "GATEKEEPER_"


class ConfigError(Exception):
    """The configuration file or an environment variable is unusable."""


def data_dir() -> Path:
    """Where the embedded database and local state live (per user)."""
    override = os.environ.get(f"{ENV_PREFIX}DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "gatekeeper.toml"


def _doc(text: str, default: Any = None, factory: Any = None) -> Any:
    if factory is not None:
        return field(default_factory=factory, metadata={"doc": text})
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class Settings:
    """Everything an administrator may set. Field names are the TOML keys."""

    database_url: str = _doc(
        "SQLAlchemy URL of the store; default: SQLite file `gatekeeper.db` in the data directory."
        " PostgreSQL: `postgresql+psycopg://user@host:5432/db`.",
        "",
    )
    internal_domains: tuple[str, ...] = _doc(
        "The organisation's own mail domains (comma-separated in the environment);"
        " mail between internal addresses is released.",
        factory=tuple,
    )
    policy_file: str = _doc(
        "A site policy YAML that overrides `policies/default.yaml` key by key.", ""
    )
    log_level: str = _doc("Logging level of long-running services (JSON lines on stderr).", "INFO")
    # -- the SMTP relay (`gatekeeper relay`) --
    relay_host: str = _doc("Address the SMTP relay listens on.", "127.0.0.1")
    relay_port: int = _doc("TCP port of the SMTP relay (587 is the usual submission port).", 2525)
    tls_cert_file: str = _doc(
        "PEM certificate (chain) the relay offers with STARTTLS; without it there is no"
        " STARTTLS and so no AUTH: only trusted networks can relay.",
        "",
    )
    tls_key_file: str = _doc("PEM private key of `tls_cert_file`.", "")
    trusted_networks: tuple[str, ...] = _doc(
        "Networks (CIDR, comma-separated in the environment) whose clients may relay without"
        " AUTH: a front MTA that has authenticated the sender already. Default: none.",
        factory=tuple,
    )
    relay_proxies: tuple[str, ...] = _doc(
        "Load balancers (CIDR, comma-separated in the environment) in front of the relay that"
        " begin each connection with a PROXY protocol header (HAProxy's `send-proxy` or"
        " `send-proxy-v2`). When set, every connection must come from one of them and begin"
        " with the header, and the client address it carries is the one that counts: for"
        " `trusted_networks`, the sign-in limits, the audit trail and the `Received:` header."
        " Default: none.",
        factory=tuple,
    )
    relay_auth_failures: int = _doc(
        "Failed AUTH attempts from one client address (an IPv6 client's /64) or for one user"
        " name within `relay_auth_window_seconds` after which the relay refuses AUTH from it"
        " or for it with 454, without checking the password, until the oldest is that old."
        " Counted by each relay node on its own: N nodes allow N times this. 0: no limit.",
        10,
    )
    relay_auth_window_seconds: float = _doc(
        "The window `relay_auth_failures` are counted in, in seconds.", 900.0
    )
    data_size_limit: int = _doc(
        "Largest message the relay accepts, in bytes; a larger one is refused with 552.", 26214400
    )
    gate_timeout: float = _doc(
        "Seconds the relay waits for the gate's decision (including a wait for a free worker)"
        " before answering 451 so the client retries.",
        30.0,
    )
    gate_workers: int = _doc(
        "Processes that run the gate for the relay, each with its own copy of the case index;"
        " 0 means one per CPU core.",
        0,
    )
    gate_pipeline: int = _doc(
        "Messages the relay hands each gate worker at once: the one it checks and the next,"
        " waiting in its pipe, so that it goes straight on from one to the next. 1: a worker"
        " gets its next message only after answering.",
        2,
    )
    gate_worker_messages: int = _doc(
        "Messages a gate worker answers before a fresh one takes over from it (it finishes"
        " what it holds first), which bounds the memory that spaCy's pools keep of what"
        " they read. 0: never.",
        50000,
    )
    relay_cpu: str = _doc(
        "The CPU `gatekeeper relay` keeps its own threads on (SMTP, store writer, delivery),"
        " which share one interpreter lock: `auto` takes the first CPU it may use when it"
        " may use two or more, a number names one, `none` leaves them free. Its gate workers"
        " use every CPU. Give each relay on one host its own.",
        "auto",
    )
    upstream_host: str = _doc(
        "The MTA the relay delivers released mail to (required by `gatekeeper relay`).", ""
    )
    upstream_port: int = _doc("TCP port of the upstream MTA.", 25)
    upstream_starttls: bool = _doc(
        "Require STARTTLS (with a verified certificate) to the upstream MTA.", True
    )
    upstream_ca_file: str = _doc(
        "PEM file of the certificate authorities trusted for the upstream's certificate;"
        " default: the system's.",
        "",
    )
    upstream_user: str = _doc("User name for AUTH at the upstream MTA; empty: no AUTH.", "")
    upstream_password: str = _doc("Password for AUTH at the upstream MTA.", "")
    upstream_connections: int = _doc(
        "Concurrent connections each relay node keeps to the upstream MTA.", 4
    )
    retry_delay: float = _doc(
        "Seconds before the first retry of a delivery the upstream deferred; each further"
        " retry waits twice as long, at most an hour.",
        60.0,
    )
    retry_lifetime_hours: float = _doc(
        "Hours a message keeps being retried before it is returned to its sender with a"
        " delivery status notification.",
        120.0,
    )
    notice_from: str = _doc(
        "The From: address of notices and delivery reports to senders; default:"
        " `gatekeeper@` the first internal domain.",
        "",
    )
    node_name: str = _doc(
        "This relay node's name in trace headers, the store and queue leases (one relay"
        " process per name); default: the host name.",
        "",
    )
    delivery_lease_seconds: float = _doc(
        "How long a relay node's claim on the deliveries it is sending lasts; the node renews"
        " it while it works, so only a node that stopped loses it, and another node then sends"
        " what it left.",
        60.0,
    )
    record_refresh_seconds: float = _doc(
        "How often the relay looks for a changed case record or staff list; when it finds one"
        " it reloads its gate workers, the old ones serving until the new are ready. 0: never.",
        60.0,
    )
    metrics_port: int = _doc(
        "TCP port (on `relay_host`) of the relay's health check (`/healthz`) and Prometheus"
        " metrics (`/metrics`); 0 turns them off.",
        9125,
    )
    # -- letters: the CUPS backend and the letters service (`gatekeeper post serve`) --
    letters_host: str = _doc(
        "Address the letters service listens on, and the CUPS backend calls.", "127.0.0.1"
    )
    letters_port: int = _doc(
        "TCP port of the letters service: the CUPS backend's checks, `/healthz` and `/metrics`.",
        9127,
    )
    letters_socket: str = _doc(
        "A Unix socket the letters service listens on instead of TCP (the CUPS backend runs as"
        " CUPS's user, usually `lp`, which must be able to open it); empty: TCP.",
        "",
    )
    letters_timeout: float = _doc(
        "Seconds the CUPS backend waits for the letters service's decision before it holds the"
        " print job (never printing it unchecked).",
        60.0,
    )
    letters_user_domain: str = _doc(
        "Mail domain that turns a CUPS user name into a member of staff's address"
        " (`a.jones` -> `a.jones@DOMAIN`); empty: the member of staff whose address starts"
        " with the user name, else the user name as it is.",
        "",
    )
    letter_window: str = _doc(
        "Where the envelope window shows the address block: left, top, width, height in mm"
        " from the first page's top left. Default: `20,45,90,45` (a UK DL window envelope).",
        "20,45,90,45",
    )
    cups_server: str = _doc(
        "The CUPS server (`host:port`) Gatekeeper asks to release or cancel a held letter's"
        " print job once it is decided; empty: the server the job came from.",
        "",
    )
    # -- the approval pages (`gatekeeper web`) --
    web_host: str = _doc("Address the approval web app listens on.", "127.0.0.1")
    web_port: int = _doc(
        "TCP port of the approval web app (plain HTTP: put a TLS reverse proxy in front).", 8080
    )
    web_public_url: str = _doc(
        "The approval pages' address as staff reach it (e.g. `https://gatekeeper.example`),"
        " for links in notices; empty: notices carry no link.",
        "",
    )
    web_secret_key: str = _doc(
        "Key that signs session cookies; empty: one is generated on first start and kept in"
        " the store, so every web node shares it.",
        "",
    )
    web_session_minutes: int = _doc(
        "Minutes a sign-in lasts; afterwards the browser asks for the password again.", 480
    )
    web_sso_header: str = _doc(
        "Request header a trusted reverse proxy sets to the signed-in member of staff's email"
        " address (single sign-on, e.g. `X-Remote-User`); empty: passwords only.",
        "",
    )
    web_trusted_proxies: tuple[str, ...] = _doc(
        "Addresses (CIDR, comma-separated in the environment) of the reverse proxies whose"
        " `web_sso_header`, `X-Forwarded-For` and `X-Forwarded-Proto` are believed; from"
        " anyone else the SSO header is refused. Default: none.",
        factory=tuple,
    )
    web_sweep_seconds: float = _doc(
        "How often the web app escalates and expires held items and plants canaries"
        " (`gatekeeper held sweep` does the same once); 0: never.",
        60.0,
    )
    register_sync_seconds: float = _doc(
        "How often the web app records new near misses in the register (blocked, returned and"
        " corrected items, missed canaries, scan alarms) and, once a day, purges content past"
        " the policy's retention; `gatekeeper register sync` and `gatekeeper retention run` do"
        " the same from cron. 0: never.",
        60.0,
    )
    # -- encryption at rest (`gatekeeper keys`) --
    quarantine_key_file: str = _doc(
        "Keyring file that seals held content in the store (`gatekeeper keys generate FILE`"
        " makes one; every node needs the same); empty: `quarantine_keys`, else a keyring"
        " generated in the data directory on first use.",
        "",
    )
    quarantine_keys: str = _doc(
        "The keyring itself, `ID:KEY` entries separated by commas, the first sealing (for a"
        " secret store that sets the environment); use this or `quarantine_key_file`.",
        "",
    )

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v not in (None, "")})

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{data_dir() / 'gatekeeper.db'}"


def setting_docs() -> dict[str, str]:
    """Each setting's name with its one-line description (for docs and `--help`)."""
    return {f.name: f.metadata["doc"] for f in fields(Settings)}


def _coerce(name: str, raw: Any, default: Any) -> Any:
    if isinstance(default, tuple):
        if isinstance(raw, str):
            return tuple(part.strip().lower() for part in raw.split(",") if part.strip())
        if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            return tuple(x.strip().lower() for x in raw)
        raise ConfigError(f"setting {name!r} must be a list of strings")
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"setting {name!r} must be true or false, not {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"setting {name!r} must be a whole number, not {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"setting {name!r} must be a number, not {raw!r}") from None
    if not isinstance(raw, str):
        raise ConfigError(f"setting {name!r} must be a string")
    return raw


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Defaults, then the file, then `GATEKEEPER_*` environment variables."""
    env = os.environ if environ is None else environ
    defaults = Settings()
    values: dict[str, Any] = {}
    explicit = config_file or env.get(f"{ENV_PREFIX}CONFIG")
    path = Path(explicit) if explicit else default_config_path()
    if explicit and not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist")
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        known = {f.name for f in fields(Settings)}
        for key, value in raw.items():
            if key not in known:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            values[key] = _coerce(key, value, getattr(defaults, key))
    for f in fields(Settings):
        env_value = env.get(ENV_PREFIX + f.name.upper())
        if env_value is not None:
            values[f.name] = _coerce(f.name, env_value, getattr(defaults, f.name))
    return replace(defaults, **values)
