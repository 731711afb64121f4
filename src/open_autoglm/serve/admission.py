"""Admission control: at most `max_active` requests do model work at once (a stream holds one generate thread), at
most `max_queued` more wait for a turn, and none waits longer than `timeout_s`. A request beyond those bounds is
refused at once with 503 and `Retry-After`, so an overloaded server sheds load instead of piling up threads and
waits (150 unbounded streams made 114 threads and an ordinary request waited 35 s)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from open_autoglm.serve.errors import APIError

RETRY_AFTER_S = 1  # queues drain in seconds: a client should come back soon, not hammer at once


class Ticket:
    """One admitted request's turn, given back once: when the request ends, or when the work it handed the turn
    to ends (a stream outlives its request handler)."""

    def __init__(self, admission: Admission) -> None:
        self._admission, self._released, self.handed_over = admission, False, False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._admission._leave()

    def hand_over(self, done: asyncio.Future[Any]) -> None:
        """Keep the turn until `done` completes, whatever becomes of the request."""
        self.handed_over = True
        done.add_done_callback(lambda _: self.release())


class Admission:
    def __init__(self, max_active: int, max_queued: int, timeout_s: float) -> None:
        self.max_active, self.max_queued, self.timeout_s = max_active, max_queued, timeout_s
        self.active = 0  # requests holding a turn
        self.queued = 0  # requests waiting for one
        self._turns: asyncio.Semaphore | None = None  # made in the server's event loop on first use

    async def enter(self) -> Ticket:
        """A turn, after waiting at most `timeout_s` in the queue; 503 when the queue is full or the wait ran out."""
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.max_active)
        if (
            not self._turns.locked()
        ):  # a free turn: taken at once, without wait_for's extra task and loop turn
            await self._turns.acquire()
            self.active += 1
            return Ticket(self)
        if self.queued >= self.max_queued:
            raise self._overloaded(f"{self.active} requests running and {self.queued} waiting")
        self.queued += 1
        try:
            await asyncio.wait_for(self._turns.acquire(), self.timeout_s)
        except asyncio.TimeoutError:
            raise self._overloaded(f"no turn came within {self.timeout_s:g} s") from None
        finally:
            self.queued -= 1
        self.active += 1
        return Ticket(self)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[Ticket]:
        """A turn for the body of the `async with`, kept beyond it only if handed over."""
        ticket = await self.enter()
        try:
            yield ticket
        finally:
            if not ticket.handed_over:
                ticket.release()

    def _leave(self) -> None:
        assert self._turns is not None
        self.active -= 1
        self._turns.release()

    def _overloaded(self, why: str) -> APIError:
        return APIError(
            503,
            f"the server is at capacity ({why}); retry after {RETRY_AFTER_S} s",
            "server_overloaded",
            "server_error",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
