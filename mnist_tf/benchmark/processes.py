"""One process per contender, commanded through a pipe: each has its own TensorFlow runtime and peak memory."""

from __future__ import annotations

import dataclasses
import multiprocessing
import platform
import resource
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import keras

from mnist_tf.benchmark.contenders import CONTENDERS
from mnist_tf.config import Config
from mnist_tf.data.sources import Splits
from mnist_tf.errors import MnistTfError, first_line


class ContenderProcess:
    """One contender's process and the pipe that commands it."""

    def __init__(self, context: Any, name: str, *args: Any) -> None:
        self.name = name
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, name, *args), daemon=True)
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
    """All contenders' processes, started together and stopped together (killed if anything fails)."""

    def __init__(self, config: Config, splits: Splits, total_steps: int) -> None:
        self.args = (config, splits, total_steps)

    def __iter__(self) -> Iterator[ContenderProcess]:
        return iter(self.processes)

    def rotated(self, turn: int) -> list[ContenderProcess]:
        start = turn % len(self.processes)
        return self.processes[start:] + self.processes[:start]

    def __enter__(self) -> Processes:
        context = multiprocessing.get_context("spawn")  # a fresh TensorFlow runtime in each
        self.processes = [ContenderProcess(context, name, *self.args) for name in CONTENDERS]
        try:
            for process in self.processes:
                process.call(None)  # ready
        except BaseException:
            self.__exit__()
            raise
        return self

    def stop(self) -> list[tuple[ContenderProcess, float]]:
        """Ends every process; returns each one's peak resident memory in MB."""
        return [(process, process.call("stop")) for process in self.processes]

    def __exit__(self, *exc_info: Any) -> None:
        for process in self.processes:
            if process.process.is_alive():
                process.process.kill()
            process.process.join()


def _serve(connection: Connection, name: str, config: Config, splits: Splits, total_steps: int) -> None:
    """A contender's process: builds it, then answers train/evaluate commands until told to stop."""
    try:
        layers, make = CONTENDERS[name]
        keras.utils.set_random_seed(config.seed)
        contender = make(dataclasses.replace(config, layers=layers), splits, total_steps)
        connection.send(("ok", None))
        while (message := connection.recv())[0] != "stop":
            command, argument = message
            connection.send(("ok", contender.train(argument) if command == "train" else contender.evaluate()))
        connection.send(("ok", _peak_rss_mb()))
    except Exception as e:  # reported by the parent as one line
        connection.send(("error", f"{name}: {first_line(e) if isinstance(e, MnistTfError) else repr(e)}"))


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
