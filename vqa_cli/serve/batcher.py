"""Micro-batching: concurrent requests to one model share a forward pass, off the event loop.

Each request is one image and its questions. A worker thread takes the first waiting
request, waits at most `max_wait` seconds for more (up to `max_images`), and answers them
all through the same answering stream as `vqa batch` (each image encoded once, questions
fused in batches). The model answers each question from its own image alone, so an answer
does not depend on what else shared its batch.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass

from ..errors import VQAError
from ..run.stream import Request, answer_window


@dataclass
class Job:
    image: object  # a decoded PIL image
    questions: list[str]
    top_k: int
    choices: tuple[str, ...] | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future

    def finish(self, answers: list | None = None, error: BaseException | None = None) -> None:
        """Hand the result to the waiting request, from the worker thread."""
        def settle():
            if not self.future.done():
                self.future.set_exception(error) if error is not None else self.future.set_result(answers)

        self.loop.call_soon_threadsafe(settle)


class Batcher:
    def __init__(self, engine, max_wait: float = 0.005, max_images: int = 32, batch_size: int = 64):
        self.engine = engine
        self.max_wait = max_wait
        self.max_images = max_images
        self.batch_size = batch_size
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name=f"vqa-batcher-{engine.name}", daemon=True)
        self._thread.start()

    async def answer(self, image, questions: list[str], top_k: int = 1, choices: tuple[str, ...] | None = None) -> list:
        """Answers for one image's questions, computed in the worker thread with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        job = Job(image, questions, top_k, choices, loop, loop.create_future())
        self._jobs.put(job)
        return await job.future

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5)

    def _take(self) -> list[Job] | None:
        first = self._jobs.get()
        if first is None:
            return None
        jobs, deadline = [first], time.monotonic() + self.max_wait
        while len(jobs) < self.max_images:
            try:
                job = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                self._jobs.put(None)
                break
            jobs.append(job)
        return jobs

    def _work(self) -> None:
        """The worker: answers whatever waits, for ever; an error fails the requests it belongs to, never the thread."""
        while (jobs := self._take()) is not None:
            for top_k in sorted({job.top_k for job in jobs}):  # one top_k per forward pass
                group = [job for job in jobs if job.top_k == top_k]
                try:
                    self._answer(group, top_k)
                except Exception as e:  # noqa: BLE001 - a bug must cost one pass, not the server
                    for job in group:
                        job.finish(error=VQAError(f"the model failed on this request: {type(e).__name__}"))

    def _answer(self, jobs: list[Job], top_k: int) -> None:
        requests = [Request(f"request-{n}", q, data=n, choices=job.choices) for n, job in enumerate(jobs) for q in job.questions]
        images = {f"request-{n}": job.image for n, job in enumerate(jobs)}
        answered = answer_window(self.engine, requests, images, top_k, self.batch_size)  # a bad image or question fails alone
        for n, job in enumerate(jobs):
            mine = [(request, answer) for request, answer in answered if request.data == n]
            failed = next((request.error for request, answer in mine if answer is None), None)
            job.finish(error=VQAError(failed)) if failed else job.finish([answer for _, answer in mine])
