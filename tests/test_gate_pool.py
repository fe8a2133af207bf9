"""The relay's gate workers take their next message while they check the current one, and
each reply still reaches the message it answers: when a caller gives up waiting, when the
worker runs over its time limit, when the record is reloaded.

The pool runs real worker processes with the real gate on a real store; a worker is held
still with SIGSTOP where a test needs messages to wait in its pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from email import message_from_bytes

import pytest

from gatekeeper.config import Settings
from gatekeeper.decision import Verdict
from gatekeeper.smtp.gatepool import (
    QUEUE_BEHIND_SECONDS,
    GateOutcome,
    GatePool,
    GateRequest,
    GateUnavailable,
)
from tests.smtp_peers import World, email, prepared_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with prepared_world("sqlite", tmp_path_factory.mktemp("gate-pool")) as world:
        yield world


def settings_for(world: World, **values: object) -> Settings:
    return Settings(
        database_url=world.database_url,
        internal_domains=("gatekeeper.example",),
        **values,  # type: ignore[arg-type]
    )


def in_one_worker(
    world: World, scenario: Callable[[GatePool, int], Awaitable[None]], **values: object
) -> None:
    """Run `scenario` with a started pool of one worker and that worker's process id."""

    async def run() -> None:
        pool = GatePool(settings_for(world, **values), 1)
        await pool.start()
        try:
            await scenario(pool, *worker_pids(pool))
        finally:
            await pool.close()

    asyncio.run(run())


def request(raw: bytes) -> GateRequest:
    parsed = message_from_bytes(raw)
    return GateRequest(raw, str(parsed["From"]), (str(parsed["To"]),))


def released(world: World, subject: str = "Hearing on Tuesday") -> GateRequest:
    s = world.scenario
    body = f"Dear {s.release_greeting},\n\nI will call you tomorrow morning.\n\nKind regards\n"
    return request(email(world.sender.email, s.release_to, subject, body).as_bytes())


def blocked(world: World, subject: str = "Update") -> GateRequest:
    s = world.scenario
    return request(
        email(world.sender.email, s.leak_to, subject, f"Hello,\n\n{s.leak_text}\n").as_bytes()
    )


def held(world: World, subject: str = "Contact") -> GateRequest:
    s = world.scenario
    body = "Hello,\n\nHere are the arrangements for contact next week.\n"
    return request(email(world.sender.email, s.lookalike_to, subject, body).as_bytes())


def worker_pids(pool: GatePool) -> list[int]:
    return sorted(w.process.pid for w in pool._all if w.process.pid is not None)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    """The worker process stands still (it reads nothing more from its pipe) until the end."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


async def until(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.02)


def verdicts(outcomes: list[GateOutcome]) -> list[Verdict]:
    return [o.decision.verdict for o in outcomes]


def test_each_message_gets_its_own_decision_when_a_worker_holds_the_next_one(
    world: World,
) -> None:
    async def scenario(pool: GatePool, pid: int) -> None:
        mixed = [released(world), blocked(world), held(world)] * 4
        with paused(pid):
            checks = [asyncio.ensure_future(pool.check(r, 120)) for r in mixed]
            # The one worker is sent two at once: the one it checks and the next.
            await until(lambda: pool.in_flight == 2, "two messages in the worker's pipe")
        outcomes = await asyncio.gather(*checks)
        expected = [Verdict.RELEASE, Verdict.BLOCK, Verdict.HOLD] * 4
        assert verdicts(outcomes) == expected

    in_one_worker(world, scenario)


def test_with_a_pipeline_of_one_a_worker_holds_one_message_at_a_time(world: World) -> None:
    async def scenario(pool: GatePool, pid: int) -> None:
        with paused(pid):
            checks = [asyncio.ensure_future(pool.check(released(world), 120))]
            checks.append(asyncio.ensure_future(pool.check(blocked(world), 120)))
            await until(lambda: pool.in_flight == 1, "one message in the worker's pipe")
            await asyncio.sleep(0.3)
            assert pool.in_flight == 1
        outcomes = await asyncio.gather(*checks)
        assert verdicts(outcomes) == [Verdict.RELEASE, Verdict.BLOCK]

    in_one_worker(world, scenario, gate_pipeline=1)


def test_no_message_is_queued_behind_one_that_has_been_checking_for_a_while(
    world: World,
) -> None:
    async def scenario(pool: GatePool, pid: int) -> None:
        with paused(pid):
            long = asyncio.ensure_future(pool.check(held(world), 120))
            await until(lambda: pool.in_flight == 1, "the first message sent")
            # Perhaps a long text: the next waits for a worker rather than behind it.
            await asyncio.sleep(QUEUE_BEHIND_SECONDS + 0.2)
            later = asyncio.ensure_future(pool.check(blocked(world), 120))
            await asyncio.sleep(0.2)
            assert pool.in_flight == 1
        assert (await long).decision.verdict is Verdict.HOLD
        assert (await later).decision.verdict is Verdict.BLOCK

    in_one_worker(world, scenario)


def test_a_message_waiting_behind_one_that_runs_over_goes_to_a_fresh_worker(
    world: World,
) -> None:
    async def scenario(pool: GatePool, stuck: int) -> None:
        with paused(stuck):
            slow = asyncio.ensure_future(pool.check(released(world), 3))
            behind = asyncio.ensure_future(pool.check(blocked(world), 120))
            await until(lambda: pool.in_flight == 2, "both messages in the worker's pipe")
            with pytest.raises(GateUnavailable, match="longer than the time limit"):
                await slow
        # The worker was killed for the first; the second was checked all the same.
        outcome = await behind
        assert outcome.decision.verdict is Verdict.BLOCK
        (fresh,) = worker_pids(pool)
        assert fresh != stuck
        assert not alive(stuck)

    in_one_worker(world, scenario)


def test_a_caller_that_gives_up_leaves_the_worker_alone_and_its_late_reply_reaches_no_one(
    world: World,
) -> None:
    async def scenario(pool: GatePool, pid: int) -> None:
        with paused(pid):
            first = asyncio.ensure_future(pool.check(held(world), 120))
            impatient = asyncio.ensure_future(pool.check(released(world), 1))
            with pytest.raises(GateUnavailable, match="longer than the time limit"):
                await impatient
        # The worker goes on: it answers the first, then the one nobody waits for.
        assert (await first).decision.verdict is Verdict.HOLD
        after = await pool.check(blocked(world), 120)
        assert after.decision.verdict is Verdict.BLOCK
        assert worker_pids(pool) == [pid]

    in_one_worker(world, scenario)


def test_after_a_reload_the_old_worker_answers_what_it_holds_then_stops(world: World) -> None:
    async def scenario(pool: GatePool, old: int) -> None:
        with paused(old):
            checks = [
                asyncio.ensure_future(pool.check(r, 300)) for r in (held(world), released(world))
            ]
            await until(lambda: pool.in_flight == 2, "both messages in the worker's pipe")
            await pool.reload()
            # New messages go to the new worker while the old one still holds two.
            assert (await pool.check(blocked(world), 60)).decision.verdict is Verdict.BLOCK
        assert verdicts(await asyncio.gather(*checks)) == [Verdict.HOLD, Verdict.RELEASE]
        await until(lambda: old not in worker_pids(pool), "the old worker to leave")
        assert len(worker_pids(pool)) == 1

    in_one_worker(world, scenario)


def test_a_worker_that_has_answered_its_share_makes_way_for_a_fresh_one(world: World) -> None:
    async def scenario(pool: GatePool, worn: int) -> None:
        for _ in range(3):
            assert (await pool.check(released(world), 120)).decision.verdict is Verdict.RELEASE
        # It has answered its share: a fresh worker starts, and nothing waits meanwhile.
        mixed = [held(world), blocked(world)] * 3
        outcomes = await asyncio.gather(*(pool.check(r, 120) for r in mixed))
        assert verdicts(outcomes) == [Verdict.HOLD, Verdict.BLOCK] * 3
        await until(lambda: not alive(worn), "the worn worker to stop")
        (fresh,) = worker_pids(pool)
        assert (await pool.check(blocked(world), 120)).decision.verdict is Verdict.BLOCK
        assert worker_pids(pool) == [fresh]

    in_one_worker(world, scenario, gate_worker_messages=3)
