"""When to checkpoint mid-epoch: every N steps and/or every N seconds, so that a SIGKILL, an out-of-memory kill or
a power cut loses at most that much work. The epoch loop also checkpoints at every epoch's end; all of them share
the run's CheckpointManager, which keeps the last few."""

from __future__ import annotations

import time
from collections.abc import Callable

# Under multi-worker every worker must save at the same step, but their clocks differ: they agree on "the time
# has come" by an all-reduce, every this many steps (a collective per step would cost more than the saves).
AGREE_EVERY_STEPS = 20


class CheckpointClock:
    """Says at which step boundaries a mid-epoch checkpoint is due."""

    def __init__(
        self,
        every_steps: int,
        every_seconds: float,
        agree: Callable[[bool], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`agree(due)` is True if any worker's `due` is (None: a single process, whose own clock decides)."""
        self.every_steps, self.every_seconds, self.agree, self.clock = every_steps, every_seconds, agree, clock
        self.last_save = clock()

    def saved(self) -> None:
        """A checkpoint was written (by the clock, an epoch's end or a stop request): the seconds count from here."""
        self.last_save = self.clock()

    def due(self, first: int, last: int) -> bool:
        """After a call that trained global steps `first`..`last` (1-based): checkpoint at `last`?"""
        if self.every_steps and last // self.every_steps > (first - 1) // self.every_steps:
            return True
        if not self.every_seconds:
            return False
        late = self.clock() - self.last_save >= self.every_seconds
        if self.agree is None:
            return late
        if last // AGREE_EVERY_STEPS == (first - 1) // AGREE_EVERY_STEPS:
            return False
        return self.agree(late)
