"""Micro-batching: items from concurrent requests answered together, by one call on a worker thread.

The LSTM kernel spreads one call over all cores and releases the GIL; a batch of
32 faces costs far less than 32 calls of one face. A request therefore does not
call the kernel itself: it hands its face to a batcher and waits. The batcher
takes what has arrived, waits at most ``max_wait`` seconds for more while the batch
is below ``max_batch``, and runs one call of ``work`` on the worker thread. While that
call runs, the next requests gather, so the busier the service, the larger the
batches: throughput grows with load instead of queueing one face at a time.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["MicroBatcher"]


class MicroBatcher:
    """Answers :meth:`submit`-ted items with one call of ``work`` per batch.

    Parameters
    ----------
    work : callable
        ``work(items) -> results``, one result per item, in order. Runs on ``executor``;
        an exception fails every request of its batch.
    executor : concurrent.futures.Executor
        Where ``work`` runs; one thread keeps the kernel's cores to one batch at a time.
    max_batch : int, default 32
        Items per call at most; 1 answers one item per call (no batching).
    max_wait : float, default 0.002
        Seconds a batch below ``max_batch`` waits for more items after its first.
    """

    def __init__(self, work: Callable[[list], Sequence], *, executor: concurrent.futures.Executor,
                 max_batch: int = 32, max_wait: float = 0.002):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait < 0:
            raise ValueError(f"max_wait must be at least 0 seconds, got {max_wait}")
        self.work = work
        self.executor = executor
        self.max_batch = int(max_batch)
        self.max_wait = float(max_wait)
        self._pending: collections.deque = collections.deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self.batches = 0  # calls of work so far
        self.items = 0  # items answered so far

    async def submit(self, item: Any) -> Any:
        """The result of ``work`` for ``item``, computed in a batch with whatever else arrives."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._arrived = asyncio.Event()
            self._task = loop.create_task(self._run())
        future = loop.create_future()
        self._pending.append((item, future))
        self._arrived.set()
        return await future

    async def close(self) -> None:
        """Stop taking batches; requests still waiting fail."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while self._pending:
            _, future = self._pending.popleft()
            if not future.done():
                future.set_exception(RuntimeError("the service is shutting down"))

    async def _gather(self) -> None:
        """Wait until a batch is full or ``max_wait`` has passed since its first item."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while len(self._pending) < self.max_batch:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            if not self._pending:
                self._arrived.clear()
                continue
            if self.max_batch > 1 and self.max_wait > 0:
                await self._gather()
            batch = [self._pending.popleft() for _ in range(min(self.max_batch, len(self._pending)))]
            # A client that went away cancelled its future: no need to compute its answer.
            batch = [(item, future) for item, future in batch if not future.done()]
            if self._pending:
                self._arrived.set()  # gathering may have cleared it; what is left makes the next batch
            else:
                self._arrived.clear()
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(self.executor, self.work, [item for item, _ in batch])
            except Exception as error:  # noqa: BLE001 - handed to every request of the batch
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.batches += 1
            self.items += len(batch)
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)
