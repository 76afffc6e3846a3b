"""One process per contender, commanded through a pipe: each has its own TensorFlow runtime and peak memory, and
starts as a user's script would (imports, data, model), alone on the machine, so that its start-up is timed."""

from __future__ import annotations

import dataclasses
import multiprocessing
import platform
import resource
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import keras

from mnist_tf.benchmark.contenders import CONTENDERS
from mnist_tf.config import Config
from mnist_tf.data import sources
from mnist_tf.errors import MnistTfError, first_line


class ContenderProcess:
    """One contender's process and the pipe that commands it."""

    def __init__(self, context: Any, name: str, config: Config, total_steps: int) -> None:
        self.name = name
        self.connection, child = context.Pipe()
        started = time.time()  # the wall clock: the child reads the same one
        self.process = context.Process(target=_serve, args=(child, name, config, total_steps, started), daemon=True)
        self.process.start()
        child.close()

    def call(self, command: str | None, argument: Any = None) -> Any:
        """Sends a command (None: just wait for the next answer) and returns the answer."""
        if command:
            self.connection.send((command, argument))
        try:
            status, value = self.connection.recv()
        except EOFError:
            self.process.join()
            raise MnistTfError(f"the {self.name} process died (exit code {self.process.exitcode})") from None
        if status == "error":
            raise MnistTfError(value)
        return value


class Processes:
    """All contenders' processes, started one after another and stopped together (killed if anything fails)."""

    def __init__(self, config: Config, total_steps: int) -> None:
        self.config, self.total_steps = config, total_steps
        self.processes: list[ContenderProcess] = []
        self.startup: dict[str, dict[str, float]] = {}  # name -> seconds of each start-up phase

    def __iter__(self) -> Iterator[ContenderProcess]:
        return iter(self.processes)

    def rotated(self, turn: int) -> list[ContenderProcess]:
        start = turn % len(self.processes)
        return self.processes[start:] + self.processes[:start]

    def __enter__(self) -> Processes:
        context = multiprocessing.get_context("spawn")  # a fresh TensorFlow runtime in each
        try:
            for name in CONTENDERS:
                self.processes.append(ContenderProcess(context, name, self.config, self.total_steps))
                self.startup[name] = self.processes[-1].call(None)  # ready: how long it took
        except BaseException:
            self.__exit__()
            raise
        return self

    def stop(self) -> list[tuple[ContenderProcess, tuple[float, float | None]]]:
        """Ends every process; returns each one's peak resident memory in MB and its first step's seconds."""
        return [(process, process.call("stop")) for process in self.processes]

    def __exit__(self, *exc_info: Any) -> None:
        for process in self.processes:
            if process.process.is_alive():
                process.process.kill()
            process.process.join()


def _serve(connection: Connection, name: str, config: Config, total_steps: int, started: float) -> None:
    """A contender's process: loads the data and builds the contender, says how long each took (from the process's
    start: the interpreter and imports first), then answers train/evaluate commands until told to stop. Its first
    training command times the first step (tracing and first kernel calls) on its own."""
    try:
        startup = {"imports": time.time() - started}
        splits = sources.load_for(config)
        startup["data"] = time.time() - started - sum(startup.values())
        layers, make = CONTENDERS[name]
        keras.utils.set_random_seed(config.seed)
        contender = make(dataclasses.replace(config, layers=layers), splits, total_steps)
        startup["model"] = time.time() - started - sum(startup.values())
        connection.send(("ok", startup))
        first_step = None  # its seconds, once it has run
        while (message := connection.recv())[0] != "stop":
            command, steps = message
            if command == "evaluate":
                connection.send(("ok", contender.evaluate()))
                continue
            seconds = 0.0
            if first_step is None:
                first_step = seconds = contender.train(1)
                steps -= 1
            connection.send(("ok", seconds + (contender.train(steps) if steps else 0.0)))
        connection.send(("ok", (_peak_rss_mb(), first_step)))
    except Exception as e:  # reported by the parent as one line
        connection.send(("error", f"{name}: {first_line(e) if isinstance(e, MnistTfError) else repr(e)}"))


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
