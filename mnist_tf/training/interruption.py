"""Stopping a run cleanly when it is told to: a checkpoint at the next step boundary, then a way out.

Laptops sleep, Colab disconnects, schedulers and cloud VMs send SIGTERM before they kill. The training loop calls
`guard.check(step)` after every train call; when a stop was requested, the guard saves a checkpoint of that very
step and raises `Interrupted`, which the script turns into a one-line message and exit status 128 + the signal.

- One process (default, one_device, mirrored, tpu): `SignalGuard` turns SIGTERM and SIGINT into a request. A second
  Ctrl-C stops at once (KeyboardInterrupt), keeping the last saved checkpoint.
- Several workers (multi_worker): every worker must save at the same step, or the collective save hangs.
  `PreemptionGuard` wraps `tf.distribute.experimental.PreemptionCheckpointHandler`, which agrees on that step
  across the cluster on SIGTERM, or on a GCE maintenance event.
- Training outside the main thread (Ray Train runs the training function in a thread of its worker), where Python
  cannot handle signals: `NoGuard`. Ray stops and restarts workers itself, and the run resumes from its last
  (clock or epoch) checkpoint.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import tensorflow as tf

from mnist_tf.errors import Interrupted

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def at_once_on_second_ctrl_c(model_dir: str) -> Iterator[None]:
    """A second Ctrl-C (KeyboardInterrupt: the first asked for a checkpoint at the next step) stops at once, as
    `Interrupted` that says how to resume from the last saved checkpoint."""
    try:
        yield
    except KeyboardInterrupt:
        message = f"interrupted; run the same command with --model_dir={model_dir} to resume from its last checkpoint"
        raise Interrupted(f"\n{message}", signal.SIGINT) from None


class Guard(Protocol):
    def __enter__(self) -> Guard: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def check(self, step: int) -> None:
        """Called after each train call with the global step reached; saves and raises Interrupted on request."""


class SignalGuard:
    """SIGTERM or SIGINT ask for a stop; the next `check` saves a checkpoint and raises Interrupted."""

    def __init__(self, save: Callable[[int], object], model_dir: str) -> None:
        self._save = save
        self._model_dir = model_dir
        self._previous: dict[int, Any] = {}
        self.received: int | None = None

    def __enter__(self) -> SignalGuard:
        """Handles the signals until `__exit__` (in the main thread: `guard` chooses this guard only there)."""
        self._previous = {number: signal.signal(number, self._handle) for number in _SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def _handle(self, number: int, frame: object) -> None:
        if self.received is not None and number == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user does not want to wait for the step
        self.received = number

    def check(self, step: int) -> None:
        if self.received is not None:
            reason = f"stopped by {signal.Signals(self.received).name}"
            self._save(step)
            raise Interrupted(stopped_message(reason, step, self._model_dir), self.received)


class PreemptionGuard:
    """Multi-worker: PreemptionCheckpointHandler decides, on every worker alike, the step at which all save."""

    def __init__(
        self,
        cluster_resolver: tf.distribute.cluster_resolver.ClusterResolver,
        checkpoint: tf.train.Checkpoint,
        checkpoint_dir: Path,
        save: Callable[[int], object],
        model_dir: str,
    ) -> None:
        self._save = save
        self._model_dir = model_dir
        self._step = 0
        # The handler restores the latest checkpoint into `checkpoint`, with its own count of calls, which must be
        # equal on every worker: so all of them read the chief's directory. It never writes through this manager:
        # `save_fn` saves the way the rest of the run does (the chief to model_dir, the others to a temporary one).
        reader = tf.train.CheckpointManager(checkpoint, str(checkpoint_dir), max_to_keep=None)
        self._handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            cluster_resolver,
            reader,
            termination_config=tf.distribute.experimental.TerminationConfig(
                save_fn=self._save_current, exit_fn=self._exit
            ),
        )

    def _save_current(self) -> None:
        self._save(self._step)

    def _exit(self) -> None:
        raise Interrupted(stopped_message("preempted", self._step, self._model_dir), signal.SIGTERM)

    def __enter__(self) -> PreemptionGuard:
        return self  # the handler watches for signals from its creation on

    def __exit__(self, *exc_info: object) -> None:
        pass

    def check(self, step: int) -> None:
        self._step = step
        self._handler.save_checkpoint_if_preempted()


class NoGuard:
    """No stop requests: for training in a thread other than the main one."""

    def __enter__(self) -> NoGuard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def check(self, step: int) -> None:
        pass


def guard(
    *,
    save: Callable[[int], object],
    model_dir: str,
    preemption: tuple[tf.distribute.cluster_resolver.ClusterResolver, tf.train.Checkpoint, Path] | None = None,
) -> Guard:
    """How a run stops when told to: by PreemptionCheckpointHandler on every worker alike under multi-worker
    (`preemption`: the cluster, the run's checkpoint and the chief's checkpoint folder), else by signals, which
    reach the main thread only (training in another thread cannot be stopped this way)."""
    if threading.current_thread() is not threading.main_thread():
        return NoGuard()
    if preemption:
        return PreemptionGuard(*preemption, save, model_dir)
    return SignalGuard(save, model_dir)


def stopped_message(reason: str, step: int, model_dir: str) -> str:
    return f"{reason} at step {step}, saved; to resume, run the same command with --model_dir={model_dir}"
