"""Dynamic batching: items from concurrent requests (texts to classify, prompts to answer) wait in a queue, then
run as one batch in a worker thread, and each request's future gets its own results back.

While a batch runs, new items pile up in the queue, so under load batches fill by themselves; a lone item waits at
most `max_wait_s` for company (0: it runs at once). A batch that fails is run again item by item, so an error
reaches only the request whose item caused it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class DynamicBatcher(Generic[Item, Result]):
    def __init__(
        self, run_batch: Callable[[list[Item]], Sequence[Result]], max_batch: int, max_wait_s: float
    ) -> None:
        self.run_batch, self.max_batch, self.max_wait_s = run_batch, max_batch, max_wait_s
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]]] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        """Results for `items`, in order, once the batches holding them have run."""
        if self._worker is None:  # started on first use, in the server's own event loop
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._work())
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        for item, future in zip(items, futures, strict=True):
            self._queue.put_nowait((item, future))
        return list(await asyncio.gather(*futures))

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None

    async def _gather(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return batch

    async def _work(self) -> None:
        while True:
            batch = await self._gather()
            waiting = [
                (item, future) for item, future in batch if not future.done()
            ]  # a cancelled request left
            if not waiting:
                continue
            await self._run(waiting)

    async def _run(self, waiting: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        """Run the batch; if it fails, run its items alone, so that only the item that fails by itself fails (one
        bad item must not cost the requests batched with it their answers)."""
        try:
            results = await asyncio.to_thread(self.run_batch, [item for item, _ in waiting])
        except Exception as err:
            if len(waiting) > 1:
                for one in waiting:
                    await self._run([one])
                return
            _, future = waiting[0]
            if not future.done():
                future.set_exception(err)
            return
        for (_, future), result in zip(waiting, results, strict=True):
            if not future.done():
                future.set_result(result)
