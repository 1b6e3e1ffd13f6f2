"""Queue the charges of one namespace in one process and run them as batches, one batch at a
time, so concurrent creates cost one quota write together instead of one each (and never
conflict with each other).

kube-apiserver keeps a queue of waiting admission attributes per namespace that worker
goroutines take whole (``resourcequota/controller.go``: ``addWork``, ``getWork``,
``completeWork``). A gunicorn worker has no goroutines to spare, so here the waiting
threads do the work themselves: the first to arrive in an idle namespace leads, takes
every waiter queued by then as one batch, answers each, and hands the lead to the first
waiter that queued meanwhile (who takes everyone queued behind it). While a batch runs the
next one fills up, so the busier the namespace, the bigger the batches; a lone charge runs
at once, as before. A batch that has to try again (another process wrote the quota first)
takes along the waiters queued by then.

A waiter waits at most until its own deadline: one still queued then is taken out and
answered retryably (also when the lead comes to it too late: a waiter past its deadline
is never given the lead, whose thread would run a batch for the others while the API
server has given up on its own request); one already in a running batch is answered by
that batch (whose calls end by the earliest deadline in it), and woken as soon as its own
answer is set (``done``), not when the whole batch ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")


@dataclass(eq=False)
class Waiter(Generic[Item, Answer]):
    """One queued request: what it asks, until when it may wait, and its answer (a value or
    an exception, set by the batch that took it)."""

    item: Item
    end: float
    answer: Answer | None = None
    error: BaseException | None = None
    answered: bool = False
    leads: bool = False
    """Set (under the guard) when this waiter is to run the next batch itself."""
    taken: bool = False
    """Set (under the guard) when a batch has taken this waiter: it will answer it."""
    wake: threading.Event = field(default_factory=threading.Event)


@dataclass(eq=False)
class _Line(Generic[Item, Answer]):
    waiting: list[Waiter[Item, Answer]] = field(default_factory=list)
    running: bool = False


TakeMore = Callable[[], list[Waiter[Item, Answer]]]
"""The waiters queued since the batch was taken, now part of it (a batch that has to try
again takes them along: one write for them too, instead of one more writer racing)."""
RunBatch = Callable[[Hashable, list[Waiter[Item, Answer]], TakeMore[Item, Answer]], None]
"""Answer every waiter of a batch, and of what it took more (``answer`` or ``error``, then
``BatchQueues.done`` to wake it at once); it must not raise. A waiter it leaves without
``done`` is woken when the batch ends."""


class BatchQueues(Generic[Item, Answer]):
    """``submit(key, item, end)``: the item's answer, decided in a batch with the items of
    the same key queued alongside it; at most one batch per key runs at a time."""

    def __init__(
        self,
        run: RunBatch[Item, Answer],
        timed_out: Callable[[Hashable], BaseException],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run = run
        self._timed_out = timed_out
        self._clock = clock
        self._guard = threading.Lock()
        # Only keys with a batch running or waiting are here (namespaces churn).
        self._lines: dict[Hashable, _Line[Item, Answer]] = {}

    def __len__(self) -> int:
        """Keys with a batch running or waiters queued."""
        with self._guard:
            return len(self._lines)

    def queued(self, key: Hashable) -> int:
        """Waiters of ``key`` not taken by a batch yet."""
        with self._guard:
            line = self._lines.get(key)
            return 0 if line is None else len(line.waiting)

    def done(self, waiter: Waiter[Item, Answer]) -> None:
        """``waiter``'s answer (or error) is set: wake it now, so it does not wait for the
        rest of its batch (whose later calls may take until another waiter's deadline).
        Under the guard, so a waiter checking ``answered`` cannot miss the wake."""
        with self._guard:
            waiter.answered = True
            waiter.wake.set()

    def submit(self, key: Hashable, item: Item, end: float) -> Answer:
        me: Waiter[Item, Answer] = Waiter(item, end)
        with self._guard:
            line = self._lines.setdefault(key, _Line())
            line.waiting.append(me)
            if not line.running:
                line.running = me.leads = True
        if not me.leads and not self._wait(key, line, me):
            raise self._timed_out(key)
        if not me.answered:  # woken to lead (or leading from the start)
            self._lead(key, line)
        if me.error is not None:
            raise me.error
        assert me.answered
        return me.answer  # type: ignore[return-value]  # Answer may itself be None

    def _wait(self, key: Hashable, line: _Line[Item, Answer], me: Waiter[Item, Answer]) -> bool:
        """Until answered or given the lead: True; False when the deadline passed while
        still queued (then no batch will take this waiter)."""
        while True:
            me.wake.wait(timeout=max(me.end - self._clock(), 0.0))
            with self._guard:
                if me.answered or me.leads:
                    return True
                if me.taken:  # the batch that took it answers it, by its deadline at most
                    me.wake.clear()
                    break
                if self._clock() >= me.end:
                    line.waiting.remove(me)
                    return False
                me.wake.clear()  # woken early: wait on
        me.wake.wait()
        return True

    def _lead(self, key: Hashable, line: _Line[Item, Answer]) -> None:
        with self._guard:
            batch, line.waiting = line.waiting, []
            for waiter in batch:
                waiter.taken = True

        def take_more() -> list[Waiter[Item, Answer]]:
            with self._guard:
                more, line.waiting = line.waiting, []
                for waiter in more:
                    waiter.taken = True
            batch.extend(more)
            return more

        try:
            self._run(key, list(batch), take_more)
        except BaseException as err:  # the runner must not raise; never leave a waiter hanging
            with self._guard:
                for waiter in batch:
                    if not waiter.answered and waiter.answer is None and waiter.error is None:
                        waiter.error = err
            raise
        finally:
            with self._guard:
                for waiter in batch:
                    waiter.answered = True
                    waiter.wake.set()
                self._hand_over(key, line)

    def _hand_over(self, key: Hashable, line: _Line[Item, Answer]) -> None:
        """Give the lead to the first queued waiter still within its deadline; the ones
        before it whose deadline passed are answered retryably (leading, their thread would
        hold a request the API server gave up on while it runs the others' batch). Under
        the guard."""
        now = self._clock()
        while line.waiting and line.waiting[0].end <= now:
            late = line.waiting.pop(0)
            late.error = self._timed_out(key)
            late.answered = True
            late.wake.set()
        if line.waiting:
            following = line.waiting[0]
            following.leads = True
            following.wake.set()
        else:
            line.running = False
            del self._lines[key]
