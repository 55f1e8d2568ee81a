"""The micro-batcher on its own: shedding while the oldest request waits too long."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from models.server.batching import BatchConfig, MicroBatcher, QueueFullError


def test_batcher_sheds_while_the_oldest_request_waits_too_long() -> None:
    async def scenario() -> None:
        batcher = MicroBatcher(
            lambda X: {"y": X[:, 0]}, BatchConfig(max_wait_ms=20.0)
        )  # not started: no service
        first = batcher.submit(np.zeros((1, 2), dtype=np.float32))
        batcher.submit(np.zeros((1, 2), dtype=np.float32))  # the oldest has waited < 20 ms: accepted
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFullError, match="overloaded"):
            batcher.submit(np.zeros((1, 2), dtype=np.float32))
        await batcher.start()
        assert (await first)["y"].tolist() == [0.0]
        batcher.submit(np.zeros((1, 2), dtype=np.float32))  # served again once the backlog cleared
        await batcher.stop()

    asyncio.run(scenario())
