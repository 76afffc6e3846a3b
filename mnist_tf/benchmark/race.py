"""Speed, measured: our training loop against Keras `model.fit` and PyTorch on the same model, data, optimizer,
schedule, batch and precision.

Each model trains with the default configuration of `scripts/train.py`, each speed recipe (`--recipe=speedrun`)
with the recipe's, from a fresh start in every contender (`contenders.py`). Each contender lives in its own
process, and the processes take turns: a segment of training each (a quarter epoch), then an evaluation on the
test split each, and so on. A machine that slows down for a while slows all of them alike, so ratios from one run
are fair even on a noisy machine. Training time counts only training (from the first step, tracing included);
evaluations are timed apart. What a user waits for before that (the process, imports, data, model) is timed as
each process starts, alone. Each speed is also put against the machine's measured peak (`roofline.py`).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from mnist_tf import distribute, recipes
from mnist_tf.benchmark import roofline
from mnist_tf.benchmark.contenders import CONTENDERS, TORCH_INSTALLED
from mnist_tf.benchmark.processes import Processes
from mnist_tf.config import Config
from mnist_tf.data import pipeline, sources
from mnist_tf.data.sources import Split, Splits
from mnist_tf.reporting import machine
from mnist_tf.training import build

# What is raced by default, and the test accuracy each contender is timed to: these models (their default run),
# then the recipes with a benchmark target.
MODEL_TARGETS = {"lenet": 0.99, "mlp": 0.98}
TARGET_ACCURACY = {
    **MODEL_TARGETS,
    **{name: recipe.benchmark_target for name, recipe in recipes.RECIPES.items() if recipe.benchmark_target},
}
MODELS = tuple(TARGET_ACCURACY)
# What a race takes from the benchmark's flags; everything else is the model's default run or the recipe.
FROM_FLAGS = ("dataset", "data_dir", "source", "tfds_data_dir", "dtype")
SEGMENTS_PER_EPOCH = 4
RACE_EPOCHS = 4  # the learning-rate schedule a raced model follows (docs/performance.md's figures)
BASELINE = "keras_fit"
PIPELINE_EPOCHS = 5  # how much of the input pipeline alone is timed


def _log(line: str) -> None:
    print(line, flush=True)  # progress shows at once, also through a pipe


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
    startup_seconds: dict[str, float] = dataclasses.field(default_factory=dict)  # imports, data, model
    first_step_seconds: float = 0.0  # tracing and the first kernel calls: part of the first segment

    def summary(self, target: float, test_images: int) -> dict[str, Any]:
        elapsed = [sum(self.train_seconds[: i + 1]) for i in range(len(self.train_seconds))]
        windows = [s * self.images_per_step / t for s, t in zip(self.train_steps, self.train_seconds, strict=True)]
        # The first segment traces the step and the first evaluation traces its function: warm-up, not speed.
        steady = windows[1:] or windows
        evaluations = self.eval_seconds[1:] or self.eval_seconds
        reached = next((t for t, a in zip(elapsed, self.accuracies, strict=True) if a >= target), None)
        startup = sum(self.startup_seconds.values())
        return {
            "train_images_per_second": round(statistics.median(steady), 1),
            "train_window_images_per_second": [round(w, 1) for w in steady],
            "eval_images_per_second": round(test_images / statistics.median(evaluations), 1),
            "seconds_to_target": None if reached is None else round(reached, 2),
            "train_seconds": round(elapsed[-1], 2),
            "final_test_accuracy": self.accuracies[-1],
            "curve": [{"seconds": round(t, 2), "accuracy": a} for t, a in zip(elapsed, self.accuracies, strict=True)],
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "startup_seconds": {phase: round(t, 2) for phase, t in self.startup_seconds.items()},
            "first_step_seconds": round(self.first_step_seconds, 2),
            "seconds_to_first_step": round(startup + self.first_step_seconds, 2),
            "seconds_from_start_to_target": None if reached is None else round(startup + reached, 2),
        }


def run(
    base: Config, models: tuple[str, ...], quick: bool = False, log: Callable[[str], None] = _log
) -> dict[str, Any]:
    """Races the contenders for each model or recipe; returns everything measured (what `scripts/benchmark.py`
    writes).

    `quick` trains one epoch per contender instead of the default run: speeds, but maybe no time to target.
    """
    if not TORCH_INSTALLED:
        log("pytorch: skipped (torch is not installed; pip install torch to race it)")
    precision = distribute.choose_dtype(base.dtype, tf.distribute.get_strategy())
    base = dataclasses.replace(base, dtype=precision.dtype)  # decided here, once, for every contender
    results: dict[str, Any] = {"quick": quick, "machine": machine.machine(), "precision": dataclasses.asdict(precision)}
    log("peak: timing a matrix product and a convolution in " + " and ".join(roofline.PEAK_DTYPES))
    results["peak"] = roofline.measure_peaks()
    results["models"] = {}
    for name in models:
        config = race_config(name, base)
        splits = sources.load_for(config)
        results["data_source"] = splits.source
        results["models"][name] = _race(name, config, splits, quick, results["peak"].get(precision.dtype), log)
    return results


def race_config(name: str, base: Config) -> Config:
    """The run raced as `name`: the recipe's, or the model's run of RACE_EPOCHS without augmentation or not-digit
    images (work that Keras `fit` and PyTorch would not do: the race compares loops on the same work), with `base`'s
    data and dtype."""
    from_flags = {field: getattr(base, field) for field in FROM_FLAGS}
    if name in recipes.RECIPES:
        return recipes.config(name, **from_flags).resolve()
    return Config(model=name, epochs=RACE_EPOCHS, augment=False, not_digits=0.0, **from_flags).resolve()


def _race(
    name: str,
    config: Config,
    splits: Splits,
    quick: bool,
    peak: dict[str, float] | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """One model's race; `peak` is the machine's in the race's precision (None: not measured for it)."""
    steps_per_epoch = pipeline.steps_per_epoch(splits.train, config.batch_size)
    total_steps = config.epochs * steps_per_epoch  # the learning-rate schedule spans the default run
    planned = steps_per_epoch if quick else total_steps
    segment = math.ceil(steps_per_epoch / SEGMENTS_PER_EPOCH)
    target = TARGET_ACCURACY[name]
    log(f"{name}: {planned} steps of batch {config.batch_size} per contender, in turns of {segment}")
    results = {contender: ContenderResult(contender, config.batch_size) for contender in CONTENDERS}
    with Processes(config, total_steps) as processes:
        for contender, startup in processes.startup.items():
            results[contender].startup_seconds = startup
        _take_turns(processes, results, planned, segment, log)
        for process, (peak_rss, first_step) in processes.stop():
            results[process.name].peak_rss_mb, results[process.name].first_step_seconds = peak_rss, first_step
    flops = roofline.flops_per_image(build.model(config, splits.image_shape))
    contenders = {contender: result.summary(target, len(splits.test)) for contender, result in results.items()}
    for summary in contenders.values():
        summary[f"vs_{BASELINE}"] = _ratios(summary, contenders[BASELINE])
        if peak:
            summary["roofline"] = roofline.achieved(summary["train_images_per_second"], flops["train"], peak)
    ours = contenders["ours"]
    pipeline_speed = pipeline_images_per_second(
        splits.train, config.batch_size, config.seed, PIPELINE_EPOCHS * steps_per_epoch
    )
    return {
        "model": config.model,
        "recipe": config.recipe,
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "steps_trained": planned,
        "segment_steps": segment,
        "target_accuracy": target,
        "flops_per_image": flops,
        "contenders": contenders,
        "pipeline_images_per_second": round(pipeline_speed, 1),
        "pipeline_to_train": round(pipeline_speed / ours["train_images_per_second"], 2),
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


def _take_turns(
    processes: Processes, results: dict[str, ContenderResult], planned: int, segment: int, log: Callable[[str], None]
) -> None:
    """`planned` steps per contender, in turns of `segment` steps, each turn trained then evaluated by all."""
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
            + " · ".join(f"{r.name} {r.accuracies[-1]:.2%} at {sum(r.train_seconds):.1f}s" for r in results.values())
        )


def pipeline_images_per_second(split: Split, batch_size: int, seed: int, steps: int) -> float:
    """The training input pipeline alone, no model: batches per second it delivers, in images."""
    batches = pipeline.train_dataset(split, batch_size, seed).take(steps)
    count = tf.function(lambda: batches.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
    count()  # traces, and warms the caches
    start = time.perf_counter()
    count()
    return steps * batch_size / (time.perf_counter() - start)
