"""The relay and its PostgreSQL store: sessions the server drops are replaced, mail flows on.

A failover, a restart of PostgreSQL or an administrator's `pg_terminate_backend`
ends the relay's open sessions. The next message must still be stored, decided
and delivered, not refused because the relay held on to a dead connection.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES_URL
from tests.pg_schema import with_app_name
from tests.smtp_peers import (
    RelayProcess,
    SmtpSink,
    World,
    email,
    prepared_world,
    ref_of,
    wait_for,
)

APPLICATION = "gatekeeper-relay-store-test"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with prepared_world("postgresql", tmp_path_factory.mktemp("relay-store")) as world:
        yield world


def drop_relay_sessions() -> int:
    """End every server session the relay has open; how many there were."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = :name"
                    ),
                    {"name": APPLICATION},
                ).all()
            )
    finally:
        admin.dispose()


def test_mail_is_accepted_and_delivered_after_the_database_dropped_the_relays_sessions(
    world: World,
) -> None:
    sink = SmtpSink().start()
    # The relay's sessions carry a name of their own, so only they are ended.
    url = with_app_name(world.database_url, APPLICATION)
    relay = RelayProcess(world, sink.port, database_url=url).start()
    try:
        s = world.scenario
        body = f"Dear {s.release_greeting},\n\nThank you, I will call you tomorrow.\n\nRegards\n"
        for subject in ("Before the sessions ended", "After the sessions ended"):
            if subject.startswith("After"):
                assert drop_relay_sessions() >= 1  # the store writer's session among them
            message = email(world.sender.email, s.release_to, subject, body)
            code, reply = relay.submit(world.sender, message)
            assert code == 250, reply
            ref = ref_of(reply)
            arrived = wait_for(
                lambda ref=ref: [m for m in sink.messages() if m.decision_ref == ref], subject
            )
            assert len(arrived) == 1
    finally:
        assert relay.stop() == 0, relay.log()
        sink.stop()
