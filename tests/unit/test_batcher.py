"""MicroBatcher: concurrent windows share forwards, never mix models, never change numbers."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from flts.serving.batcher import DeadlineExceeded, MicroBatcher, QueueFull


class Recorder:
    """A row-independent runner that remembers the batch sizes it was called with."""

    def __init__(self, factor: float = 2.0, fail: bool = False) -> None:
        self.factor = factor
        self.fail = fail
        self.sizes: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.sizes.append(len(batch))
        self.threads.add(threading.current_thread().name)
        if self.fail:
            raise ValueError("model exploded")
        return batch.sum(axis=1, keepdims=True) * self.factor


def _windows(n: int) -> list[np.ndarray]:
    return [np.full(3, float(i), dtype=np.float32) for i in range(n)]


async def _submit_all(batcher: MicroBatcher, runner: Recorder, windows: list[np.ndarray]) -> list:
    try:
        return await asyncio.gather(*(batcher.submit(runner, w) for w in windows))
    finally:
        await batcher.aclose()


def test_concurrent_submissions_share_one_forward_and_keep_their_rows() -> None:
    runner = Recorder()
    batcher = MicroBatcher(max_batch_size=64, max_wait_ms=50)
    outs = asyncio.run(_submit_all(batcher, runner, _windows(10)))
    assert runner.sizes == [10]
    assert [float(o[0]) for o in outs] == [6.0 * i for i in range(10)]
    assert all(name.startswith("flts-batch") for name in runner.threads)


def test_batches_never_exceed_max_batch_size() -> None:
    runner = Recorder()
    batcher = MicroBatcher(max_batch_size=4, max_wait_ms=50)
    outs = asyncio.run(_submit_all(batcher, runner, _windows(10)))
    assert sum(runner.sizes) == 10
    assert max(runner.sizes) <= 4
    assert [float(o[0]) for o in outs] == [6.0 * i for i in range(10)]


def test_windows_of_different_models_are_never_mixed() -> None:
    old, new = Recorder(factor=1.0), Recorder(factor=10.0)
    batcher = MicroBatcher(max_batch_size=64, max_wait_ms=50)

    async def run() -> list:
        try:
            return await asyncio.gather(
                *(batcher.submit(old if i % 2 else new, w) for i, w in enumerate(_windows(6)))
            )
        finally:
            await batcher.aclose()

    outs = asyncio.run(run())
    assert old.sizes == [3]
    assert new.sizes == [3]
    expected = [3.0 * i * (1.0 if i % 2 else 10.0) for i in range(6)]
    assert [float(o[0]) for o in outs] == expected


def test_runner_failure_reaches_every_caller_and_batcher_recovers() -> None:
    bad, good = Recorder(fail=True), Recorder()
    batcher = MicroBatcher(max_batch_size=8, max_wait_ms=5)

    async def run() -> np.ndarray:
        try:
            results = await asyncio.gather(
                *(batcher.submit(bad, w) for w in _windows(3)), return_exceptions=True
            )
            assert all(isinstance(r, ValueError) for r in results)
            return await batcher.submit(good, np.ones(3, dtype=np.float32))
        finally:
            await batcher.aclose()

    assert float(asyncio.run(run())[0]) == 6.0


def test_zero_wait_answers_a_lone_request_at_once() -> None:
    runner = Recorder()
    batcher = MicroBatcher(max_batch_size=64, max_wait_ms=0)

    async def run() -> float:
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            await batcher.submit(runner, np.ones(3, dtype=np.float32))
            return loop.time() - started
        finally:
            await batcher.aclose()

    assert asyncio.run(run()) < 1.0
    assert runner.sizes == [1]


def test_batcher_rebinds_to_a_new_event_loop() -> None:
    runner = Recorder()
    batcher = MicroBatcher(max_batch_size=64, max_wait_ms=1)
    first = asyncio.run(batcher.submit(runner, np.ones(3, dtype=np.float32)))
    second = asyncio.run(_submit_all(batcher, runner, _windows(2)))
    assert float(first[0]) == 6.0
    assert [float(o[0]) for o in second] == [0.0, 6.0]


@pytest.mark.parametrize(("size", "wait"), [(0, 1.0), (4, -1.0)])
def test_invalid_limits_are_refused(size: int, wait: float) -> None:
    with pytest.raises(ValueError, match="max_"):
        MicroBatcher(max_batch_size=size, max_wait_ms=wait)


def test_a_failing_batch_callback_never_kills_the_batcher() -> None:
    """Invariant: no request hangs. The old batcher task died with the callback's error and
    left that batch's futures unresolved for ever."""
    calls: list[int] = []

    def explode(size: int) -> None:
        calls.append(size)
        raise RuntimeError("metrics backend down")

    runner = Recorder()
    batcher = MicroBatcher(max_batch_size=8, max_wait_ms=5, on_batch=explode)

    async def run() -> list[np.ndarray]:
        try:
            first = await asyncio.wait_for(
                asyncio.gather(*(batcher.submit(runner, w) for w in _windows(3))), 5
            )
            second = await asyncio.wait_for(batcher.submit(runner, _windows(2)[1]), 5)
            return [*first, second]
        finally:
            await batcher.aclose()

    outs = asyncio.run(run())
    assert [float(o[0]) for o in outs] == [0.0, 6.0, 12.0, 6.0]
    assert len(calls) == 2


def test_queue_is_bounded_and_deadlines_fail_fast() -> None:
    release = threading.Event()

    def blocking(batch: np.ndarray) -> np.ndarray:
        release.wait(5)
        return batch.sum(axis=1, keepdims=True)

    batcher = MicroBatcher(max_batch_size=1, max_wait_ms=0, max_queue=2)

    async def run() -> list[object]:
        try:
            running = asyncio.ensure_future(batcher.submit(blocking, np.ones(3)))
            await asyncio.sleep(0.05)  # the forward is now blocked in the worker thread
            queued = [asyncio.ensure_future(batcher.submit(blocking, np.ones(3))) for _ in (1, 2)]
            await asyncio.sleep(0)
            with pytest.raises(QueueFull):
                await batcher.submit(blocking, np.ones(3))
            late = asyncio.ensure_future(batcher.submit(blocking, np.ones(3), timeout=0.05))
            return await asyncio.gather(late, return_exceptions=True)
        finally:
            release.set()
            await asyncio.gather(running, *queued, return_exceptions=True)
            await batcher.aclose()

    # The queue was full, so the late submission is refused at once, not timed out.
    (late,) = asyncio.run(run())
    assert isinstance(late, QueueFull)

    batcher = MicroBatcher(max_batch_size=1, max_wait_ms=0, max_queue=4)
    release.clear()

    async def slow() -> object:
        try:
            return await asyncio.gather(
                batcher.submit(blocking, np.ones(3), timeout=0.05), return_exceptions=True
            )
        finally:
            release.set()
            await batcher.aclose()

    (expired,) = asyncio.run(slow())
    assert isinstance(expired, DeadlineExceeded)


def test_in_loop_forwards_run_on_the_event_loop_with_the_same_numbers() -> None:
    initialised: list[str] = []
    threaded, in_loop = Recorder(), Recorder()

    async def run(batcher: MicroBatcher, runner: Recorder) -> tuple[list, str]:
        outs = await _submit_all(batcher, runner, _windows(10))
        return outs, threading.current_thread().name

    expected, _ = asyncio.run(run(MicroBatcher(max_batch_size=4, max_wait_ms=20), threaded))
    batcher = MicroBatcher(
        max_batch_size=4,
        max_wait_ms=20,
        in_loop=True,
        thread_initializer=lambda: initialised.append(threading.current_thread().name),
    )
    outs, loop_thread = asyncio.run(run(batcher, in_loop))
    assert [o.tolist() for o in outs] == [o.tolist() for o in expected]
    assert in_loop.sizes == threaded.sizes == [4, 4, 2]
    assert in_loop.threads == {loop_thread}
    assert initialised == [loop_thread]  # torch threads set where the forwards run, once
    assert batcher._executor is None  # no worker thread is started


def test_in_loop_forward_failure_reaches_callers_and_the_batcher_goes_on() -> None:
    bad, good = Recorder(fail=True), Recorder()
    batcher = MicroBatcher(max_batch_size=8, max_wait_ms=5, in_loop=True)

    async def run() -> np.ndarray:
        try:
            results = await asyncio.gather(
                *(batcher.submit(bad, w) for w in _windows(3)), return_exceptions=True
            )
            assert all(isinstance(r, ValueError) for r in results)
            return await batcher.submit(good, np.ones(3, dtype=np.float32), timeout=5.0)
        finally:
            await batcher.aclose()

    assert float(asyncio.run(run())[0]) == 6.0
