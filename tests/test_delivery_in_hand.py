"""Released mail waiting in hand for a delivery worker is bounded: a slow upstream makes the
rest wait in the store's queue, not in the relay's memory."""

from __future__ import annotations

import datetime as dt

from gatekeeper.smtp.outbound import (
    HAND_LIMIT_BYTES,
    Delivery,
    Doorbell,
    Handoff,
    ItemForDelivery,
)

MEGABYTE = 1024 * 1024


def handoff(number: int, size: int) -> Handoff:
    now = dt.datetime.now(dt.UTC)
    item = ItemForDelivery(number, f"REF{number}", "released", "s", {}, now, "n", b"x" * size)
    delivery = Delivery(number, number, "item", "a@x", "b@y", None, 1, now)
    return Handoff(f"n/{number}", [delivery], {number: item}, 0.0)


def test_messages_wait_in_hand_only_up_to_the_limit_and_make_room_as_workers_take_them() -> None:
    bell = Doorbell()
    size = 10 * MEGABYTE
    handed = 0
    while bell.room(size):
        handed += 1
        bell.hand(handoff(handed, size))
    assert handed == HAND_LIMIT_BYTES // size  # the next goes to the store's queue
    assert bell.room(HAND_LIMIT_BYTES - handed * size)  # a small one still fits

    first = bell.take()
    assert first is not None and first.token == "n/1"  # in the order they came
    assert bell.room(size)
    assert [h.token for h in bell.left()] == [f"n/{n}" for n in range(2, handed + 1)]
    assert bell.room(HAND_LIMIT_BYTES) and bell.take() is None
