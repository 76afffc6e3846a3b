"""Speed, measured: our training loop against Keras `model.fit` on the same model, data, optimizer and batch.

For each model, three contenders train from a fresh start with the default configuration of `scripts/train.py`:
- `ours`: the `Trainer` and input pipeline that `scripts/train.py` runs, with our layers (the default);
- `ours_keras_layers`: the same loop with Keras built-in layers;
- `keras_fit`: the Keras-layer model with `model.compile` + `model.fit` (verbose 0), fed by the same pipeline.

Each contender lives in its own process, so its peak memory is its own, and the processes take turns: a segment of
training each (a quarter epoch), then an evaluation on the test split each, and so on. A machine that slows down
for a while slows all three alike, so ratios from one run are fair even on a noisy machine. Training time counts
only training (from the first step, tracing included); evaluations are timed apart.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any, Protocol

import keras
import tensorflow as tf

from mnist_tf import data, train
from mnist_tf.config import Config
from mnist_tf.errors import MnistTfError, first_line

TARGET_ACCURACY = {"lenet": 0.99, "mlp": 0.98}
MODELS = tuple(TARGET_ACCURACY)  # the models raced: the default models of scripts/train.py
SEGMENTS_PER_EPOCH = 4
BASELINE = "keras_fit"
PIPELINE_EPOCHS = 5  # how much of the input pipeline alone is timed


def _log(line: str) -> None:
    print(line, flush=True)  # progress shows at once, also through a pipe


class Contender(Protocol):
    def train(self, steps: int) -> float:
        """Trains `steps` more steps; returns the seconds they took."""

    def evaluate(self) -> tuple[float, float]:
        """(test accuracy, seconds it took)."""


class LoopContender:
    """`Trainer`, as `train.run` drives it: one iterator over the whole run, `steps_per_loop` steps per call."""

    def __init__(self, config: Config, splits: data.Splits, total_steps: int) -> None:
        self.config = config
        strategy = tf.distribute.get_strategy()
        self.trainer = train.Trainer.from_config(config, strategy, splits.image_shape, total_steps)
        self.iterator = iter(data.train_dataset(splits.train, config.batch_size, config.seed))
        self.test = data.eval_dataset(splits.test, config.eval_batch_size)

    def train(self, steps: int) -> float:
        start = time.perf_counter()
        for first in range(0, steps, self.config.steps_per_loop):
            self.trainer.train(self.iterator, min(self.config.steps_per_loop, steps - first))
        self.trainer.train_metrics()  # reading a metric waits for the last step
        return time.perf_counter() - start

    def evaluate(self) -> tuple[float, float]:
        start = time.perf_counter()
        accuracy = self.trainer.evaluate(self.test).accuracy
        return accuracy, time.perf_counter() - start


class FitContender:
    """What a Keras user writes: compile, then fit. Each segment is one `fit` call that continues the data where
    the last one stopped; a callback times its steps, so `fit`'s own set-up per call is not counted against it."""

    def __init__(self, config: Config, splits: data.Splits, total_steps: int) -> None:
        strategy = tf.distribute.get_strategy()
        self.model, optimizer = train.model_and_optimizer(config, strategy, splits.image_shape, total_steps)
        self.model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            weighted_metrics=["accuracy"],  # weighted: the padding of the last evaluation batch has weight 0
        )
        self.config, self.train_split, self.steps_done = config, splits.train, 0
        self.test = data.eval_dataset(splits.test, config.eval_batch_size)

    def train(self, steps: int) -> float:
        batches = data.train_dataset(self.train_split, self.config.batch_size, self.config.seed, self.steps_done)
        timer = _StepTimer()
        self.model.fit(batches, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0, callbacks=[timer])
        self.steps_done += steps
        return timer.seconds

    def evaluate(self) -> tuple[float, float]:
        start = time.perf_counter()
        _, accuracy = self.model.evaluate(self.test, verbose=0)
        return accuracy, time.perf_counter() - start


class _StepTimer(keras.callbacks.Callback):
    """From the start of a `fit` call's first step to the end of its last."""

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if batch == 0:
            self.start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.seconds = time.perf_counter() - self.start


CONTENDERS: dict[str, tuple[str, Callable[..., Contender]]] = {
    "ours": ("ours", LoopContender),
    "ours_keras_layers": ("keras", LoopContender),
    "keras_fit": ("keras", FitContender),
}


@dataclasses.dataclass
class ContenderResult:
    """What one contender did: every segment's training time and every evaluation's accuracy and time."""

    name: str
    images_per_step: int
    train_seconds: list[float] = dataclasses.field(default_factory=list)
    train_steps: list[int] = dataclasses.field(default_factory=list)
    accuracies: list[float] = dataclasses.field(default_factory=list)
    eval_seconds: list[float] = dataclasses.field(default_factory=list)
    peak_rss_mb: float = 0.0

    def summary(self, target: float, test_images: int) -> dict[str, Any]:
        elapsed = [sum(self.train_seconds[: i + 1]) for i in range(len(self.train_seconds))]
        windows = [s * self.images_per_step / t for s, t in zip(self.train_steps, self.train_seconds, strict=True)]
        # The first segment traces the step and the first evaluation traces its function: warm-up, not speed.
        steady = windows[1:] or windows
        evaluations = self.eval_seconds[1:] or self.eval_seconds
        reached = next((t for t, a in zip(elapsed, self.accuracies, strict=True) if a >= target), None)
        return {
            "train_images_per_second": round(statistics.median(steady), 1),
            "train_window_images_per_second": [round(w, 1) for w in steady],
            "eval_images_per_second": round(test_images / statistics.median(evaluations), 1),
            "seconds_to_target": None if reached is None else round(reached, 2),
            "train_seconds": round(elapsed[-1], 2),
            "final_test_accuracy": self.accuracies[-1],
            "curve": [{"seconds": round(t, 2), "accuracy": a} for t, a in zip(elapsed, self.accuracies, strict=True)],
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }


def run(
    base: Config, models: tuple[str, ...], quick: bool = False, log: Callable[[str], None] = _log
) -> dict[str, Any]:
    """Races the contenders for each model; returns everything measured (what `scripts/benchmark.py` writes).

    `quick` trains one epoch per contender instead of the default run: speeds, but no time to target.
    """
    resolved = base.resolve()
    splits = data.load(
        resolved.dataset, resolved.data_dir, resolved.source, resolved.validation_size, resolved.tfds_data_dir
    )
    results: dict[str, Any] = {"quick": quick, "machine": machine(), "data_source": splits.source, "models": {}}
    for model in models:
        results["models"][model] = _race(dataclasses.replace(base, model=model).resolve(), splits, quick, log)
    return results


def _race(config: Config, splits: data.Splits, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    steps_per_epoch = data.steps_per_epoch(splits.train, config.batch_size)
    total_steps = config.epochs * steps_per_epoch  # the learning-rate schedule spans the default run
    planned = steps_per_epoch if quick else total_steps
    segment = math.ceil(steps_per_epoch / SEGMENTS_PER_EPOCH)
    target = TARGET_ACCURACY[config.model]
    log(f"{config.model}: {planned} steps of batch {config.batch_size} per contender, in turns of {segment}")
    results = {name: ContenderResult(name, config.batch_size) for name in CONTENDERS}
    with _Processes(config, splits, total_steps) as processes:
        done, turn = 0, 0
        while done < planned:
            steps = min(segment, planned - done)
            order = processes.rotated(turn)  # each contender goes first, second, third equally often
            for process in order:
                results[process.name].train_steps.append(steps)
                results[process.name].train_seconds.append(process.call("train", steps))
            for process in order:
                accuracy, seconds = process.call("evaluate")
                results[process.name].accuracies.append(accuracy)
                results[process.name].eval_seconds.append(seconds)
            done, turn = done + steps, turn + 1
            log(
                f"  step {done}/{planned}: "
                + " · ".join(
                    f"{r.name} {r.accuracies[-1]:.2%} at {sum(r.train_seconds):.1f}s" for r in results.values()
                )
            )
        for process, peak in processes.stop():
            results[process.name].peak_rss_mb = peak
    contenders = {name: result.summary(target, len(splits.test)) for name, result in results.items()}
    for summary in contenders.values():
        summary[f"vs_{BASELINE}"] = _ratios(summary, contenders[BASELINE])
    ours = contenders["ours"]
    pipeline = pipeline_images_per_second(
        splits.train, config.batch_size, config.seed, PIPELINE_EPOCHS * steps_per_epoch
    )
    return {
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "steps_trained": planned,
        "segment_steps": segment,
        "target_accuracy": target,
        "contenders": contenders,
        "pipeline_images_per_second": round(pipeline, 1),
        "pipeline_to_train": round(pipeline / ours["train_images_per_second"], 2),
        "eval_to_train": round(ours["eval_images_per_second"] / ours["train_images_per_second"], 2),
    }


def _ratios(summary: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    """Above 1 means better than the baseline for speeds and time, and more memory for peak RSS."""
    reached = summary["seconds_to_target"] and baseline["seconds_to_target"]
    return {
        "train_speed": round(summary["train_images_per_second"] / baseline["train_images_per_second"], 3),
        "eval_speed": round(summary["eval_images_per_second"] / baseline["eval_images_per_second"], 3),
        "time_to_target": round(baseline["seconds_to_target"] / summary["seconds_to_target"], 3) if reached else None,
        "peak_rss": round(summary["peak_rss_mb"] / baseline["peak_rss_mb"], 3),
    }


def pipeline_images_per_second(split: data.Split, batch_size: int, seed: int, steps: int) -> float:
    """The training input pipeline alone, no model: batches per second it delivers, in images."""
    batches = data.train_dataset(split, batch_size, seed).take(steps)
    count = tf.function(lambda: batches.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
    count()  # traces, and warms the caches
    start = time.perf_counter()
    count()
    return steps * batch_size / (time.perf_counter() - start)


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "TensorFlow's default"),
    }


class _Process:
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


class _Processes:
    """All contenders' processes, started together and stopped together (killed if anything fails)."""

    def __init__(self, config: Config, splits: data.Splits, total_steps: int) -> None:
        self.args = (config, splits, total_steps)

    def __iter__(self) -> Iterator[_Process]:
        return iter(self.processes)

    def rotated(self, turn: int) -> list[_Process]:
        start = turn % len(self.processes)
        return self.processes[start:] + self.processes[:start]

    def __enter__(self) -> _Processes:
        context = multiprocessing.get_context("spawn")  # a fresh TensorFlow runtime in each
        self.processes = [_Process(context, name, *self.args) for name in CONTENDERS]
        try:
            for process in self.processes:
                process.call(None)  # ready
        except BaseException:
            self.__exit__()
            raise
        return self

    def stop(self) -> list[tuple[_Process, float]]:
        """Ends every process; returns each one's peak resident memory in MB."""
        return [(process, process.call("stop")) for process in self.processes]

    def __exit__(self, *exc_info: Any) -> None:
        for process in self.processes:
            if process.process.is_alive():
                process.process.kill()
            process.process.join()


def _serve(connection: Connection, name: str, config: Config, splits: data.Splits, total_steps: int) -> None:
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


def table(results: dict[str, Any]) -> str:
    """The results as Markdown: a table of every contender, then the pipeline and each model's curve."""
    lines = [
        f"| model | contender | train images/s | vs {BASELINE} | eval images/s | vs {BASELINE} "
        f"| time to target | vs {BASELINE} | test accuracy | peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for model, race in results["models"].items():
        for name, c in race["contenders"].items():
            ratios = c[f"vs_{BASELINE}"]
            to_target = f"{c['seconds_to_target']:.1f} s" if c["seconds_to_target"] else "not reached"
            time_ratio = f"{ratios['time_to_target']:.2f}x" if ratios["time_to_target"] else "-"
            lines.append(
                f"| {model} | {name} | {c['train_images_per_second']:,.0f} | {ratios['train_speed']:.2f}x "
                f"| {c['eval_images_per_second']:,.0f} | {ratios['eval_speed']:.2f}x "
                f"| {to_target} to {race['target_accuracy']:.1%} | {time_ratio} "
                f"| {c['final_test_accuracy']:.2%} | {c['peak_rss_mb']:,.0f} MB |"
            )
        ours = race["contenders"]["ours"]
        notes.append(
            f"- {model} (batch {race['batch_size']}, {race['steps_trained']} steps): the input pipeline alone gives "
            f"{race['pipeline_images_per_second']:,.0f} images/s, {race['pipeline_to_train']:.0f}x ours' training; "
            f"evaluation runs {race['eval_to_train']:.1f}x faster than training. Test accuracy of ours over "
            "training time: " + ", ".join(f"{p['seconds']:.1f} s {p['accuracy']:.2%}" for p in ours["curve"])
        )
    return "\n".join([*lines, "", *notes])
