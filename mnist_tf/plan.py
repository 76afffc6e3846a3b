"""A run prepared once: its settings resolved, its strategy and precision chosen, its data loaded, its steps counted.

`prepare(config)` is the one place a run decides these, in the order the runtime needs (the strategy before any
other TensorFlow work); every stage after it reads the `Plan` and decides nothing again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from mnist_tf import distribute, fine_tuning
from mnist_tf.config import SETTINGS, Config, left_to_choose
from mnist_tf.data import captures, pipeline, sources
from mnist_tf.errors import MnistTfError


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a run trains, on what, where and how: read by every stage of `mnist_tf.run`."""

    config: Config  # resolved; its dtype is the precision the run computes in, its not_digits the share it trains
    strategy: tf.distribute.Strategy
    precision: distribute.Precision  # the dtype and why (--dtype=auto's choice)
    splits: sources.Splits
    per_replica_batch: int
    steps_per_epoch: int
    base: fine_tuning.StartingModel | None = None  # --init_from's trained model, opened

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.steps_per_epoch

    @property
    def chief(self) -> bool:
        """Whether this process writes the run's files (every process but the non-chief workers of a cluster)."""
        return distribute.is_chief(self.strategy)


def prepare(
    config: Config,
    note: Callable[[str], None] = print,
    new_run: bool = True,
    base: fine_tuning.StartingModel | None = None,
) -> Plan:
    """The plan of `config`'s run; `note` gets the data's lines (a folder's skipped files and its cache). A
    `new_run` makes its default folder; a tool that only reads the plan (scripts/profile_step.py) makes none. `base`
    is --init_from's model, opened: on a small data set the run fine-tunes it (mnist_tf/fine_tuning.py)."""
    named = config.model_dir is None  # the run's folder is runs/<name>/<time>, named by resolve
    config = config.resolve()
    # First: the multi-worker and TPU strategies configure the runtime, which must precede other TF work.
    strategy = distribute.make_strategy(config.strategy, config.num_gpus, config.tpu)
    precision = distribute.choose_dtype(config.dtype, strategy)
    distribute.per_replica_batch_size("batch_size", config.batch_size, strategy)  # before minutes of loading
    distribute.per_replica_batch_size("eval_batch_size", config.eval_batch_size, strategy)
    splits = sources.load_for(config, note)
    if base and fine_tuning.applies(config, splits):  # before the shares: it may give the data the model's classes
        config, splits = fine_tuning.prepare(config, splits, base, note)
    config = dataclasses.replace(
        config,
        dtype=precision.dtype,
        not_digits=config.not_digits_for(splits.class_names),
        captures=config.captures_for(splits.class_names),
        replay=config.replay or 0.0,
        distillation=config.distillation or 0.0,
    )  # from here on, what the run computes in, and trains on
    drawn = [f"{captures.count_for(splits, config.captures):,} captured digits"] if config.captures else []
    drawn += ["the not-digit images"] if config.not_digits else []
    if drawn:  # seconds before the run's header: say what they go to
        note(f"drawing {' and '.join(drawn)} from --seed={config.seed} ...")
    if config.captures:  # the run's header says how many
        splits = captures.added(splits, config.captures, config.seed)
    config = _batch_that_fits(config, len(splits.train), strategy.num_replicas_in_sync, note)
    per_replica_batch = distribute.per_replica_batch_size("batch_size", config.batch_size, strategy)
    steps_per_epoch = pipeline.steps_per_epoch(splits.train, config.batch_size)
    if config.profile_steps and config.profile_steps[1] > config.epochs * steps_per_epoch:
        raise MnistTfError(
            f"--profile_steps={config.profile_steps[1]} is past the run's last step, {config.epochs * steps_per_epoch}"
        )
    if new_run and named and config.strategy != "multi_worker":  # (workers must agree on one folder: they are given it)
        config = dataclasses.replace(config, model_dir=_new_folder(config.model_dir))
    return Plan(config, strategy, precision, splits, per_replica_batch, steps_per_epoch, base)


def _batch_that_fits(config: Config, images: int, replicas: int, note: Callable[[str], None]) -> Config:
    """The default batch size, or, for a training set smaller than it, the largest power of two (a multiple of the
    replicas) that makes four steps an epoch, said in one line: a default must not refuse a small data set. A
    --batch_size the user chose stays, and is refused as before when it is too large."""
    default = SETTINGS["batch_size"].default
    if not left_to_choose(config, "batch_size") or images >= default:
        return config
    batch = max(replicas, 2 ** int(math.log2(max(1, images // 4))) // replicas * replicas)
    note(f"note: batch size {batch}: the default, {default}, is more than the {images:,} training images")
    return dataclasses.replace(config, batch_size=batch)


def _new_folder(path: str) -> str:
    """`path`, made here, or `path-2`, `path-3` ... when runs started in the same second took it (made atomically:
    each run gets a folder of its own). Last in `prepare`: a run refused before it leaves no empty folder."""
    candidate, number = path, 1
    while True:
        try:
            Path(candidate).mkdir(parents=True)
            return candidate
        except FileExistsError:
            number += 1
            candidate = f"{path}-{number}"
        except OSError as e:
            raise MnistTfError(f"cannot create the run's folder {candidate}: {e.strerror}") from None
