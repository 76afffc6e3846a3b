"""Where a training step's time goes: TensorFlow's profiler over a few steps of a `Trainer`, its op events summed
by what they do (convolutions and their gradients, layout reorders, casts, pooling, the optimizer...).

Ops run on TensorFlow's inter-op threads, each spread over the cores by oneDNN or Eigen; two may overlap, so op
times can add up to more than the wall time. What is left of the wall time once every op's interval is taken out
is the host: Python, the `tf.function` call, waiting for the input pipeline. The pipeline's own threads work
beside the step and are reported apart.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from mnist_tf.training.trainer import Trainer

Rule = Callable[[str, str], bool]  # (op name, op type) -> whether the op belongs to the category

# In order: the first that matches an op names its category. Scopes come from `Trainer.loss_and_gradients`.
CATEGORIES: tuple[tuple[str, Rule], ...] = (
    ("augmentation", lambda name, kind: "/augment/" in name),
    ("not-digit images", lambda name, kind: "/not_digits/" in name),
    ("convolutions, forward", lambda name, kind: "Conv2D" in kind and "Backprop" not in kind),
    ("convolutions, filter gradients", lambda name, kind: "Conv2DBackpropFilter" in kind),
    ("convolutions, input gradients", lambda name, kind: "Conv2DBackpropInput" in kind),
    ("dense layers (matrix products)", lambda name, kind: "MatMul" in kind),
    ("max-pooling", lambda name, kind: "MaxPool" in kind),
    ("bias and activation", lambda name, kind: kind.startswith(("BiasAdd", "Relu", "Tanh", "Elu", "Sigmoid"))),
    ("dropout", lambda name, kind: "dropout" in name),
    ("casts", lambda name, kind: kind == "Cast"),
    ("layout reorders", lambda name, kind: "MklToTf" in kind or "Conversion" in kind or kind == "Transpose"),
    ("loss", lambda name, kind: "SoftmaxCrossEntropy" in kind),
    ("metrics", lambda name, kind: "/metrics/" in name),
    ("optimizer update", lambda name, kind: "/optimizer/" in name or "/adam/" in name),
)
OTHER = "other ops"
PIPELINE = "input pipeline (its own threads, beside the step)"
HOST = "host: Python, the call, waiting (no op running)"


@dataclasses.dataclass
class Profile:
    steps: int
    wall_seconds: float
    busy_seconds: float  # the union of every op's interval
    seconds: dict[str, float]  # category -> summed op seconds, PIPELINE included
    ops: dict[str, float]  # op type -> summed seconds, for what "other ops" holds

    def table(self) -> str:
        """Markdown: milliseconds per step of each category, and its share of the step's op time."""
        op_time = sum(t for name, t in self.seconds.items() if name != PIPELINE)
        per_step = 1000 / self.steps
        lines = ["| where | ms per step | share of op time |", "|---|---:|---:|"]
        for name, seconds in sorted(self.seconds.items(), key=lambda item: -item[1]):
            share = "-" if name == PIPELINE else f"{seconds / op_time:.1%}"
            lines.append(f"| {name} | {seconds * per_step:.2f} | {share} |")
        host = max(0.0, self.wall_seconds - self.busy_seconds)
        lines.append(f"| {HOST} | {host * per_step:.2f} | - |")
        lines.append(f"| **step (wall)** | **{self.wall_seconds * per_step:.2f}** | - |")
        return "\n".join(lines)


def profile(trainer: Trainer, iterator: Iterator, steps: int, warmup: int = 10) -> Profile:
    """Trains `warmup` steps (tracing, first kernel calls), then `steps` more one call each (as `train.py` does
    with the default `--steps_per_loop`), under the profiler."""
    trainer.train(iterator, warmup)
    trainer.train_metrics()  # waits for the warm-up
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train(iterator, 1)
        trainer.train_metrics()
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
        (trace,) = Path(logdir).glob("plugins/profile/*/*.xplane.pb")
        space = xplane_pb2.XSpace.FromString(trace.read_bytes())
    return _summarize(space, steps, wall)


def _summarize(space: xplane_pb2.XSpace, steps: int, wall: float) -> Profile:
    plane = next(plane for plane in space.planes if plane.name == "/host:CPU")
    seconds: dict[str, float] = {}
    ops: dict[str, float] = {}
    intervals = []
    for line in plane.lines:
        compute, pipeline = line.name.startswith("tf_Compute"), line.name.startswith("tf_data")
        for event in line.events:
            name = plane.event_metadata[event.metadata_id].name
            if ":" not in name or "::" in name:  # the executor's and the profiler's own events, not ops
                continue
            duration = event.duration_ps / 1e12
            if pipeline:
                seconds[PIPELINE] = seconds.get(PIPELINE, 0.0) + duration
            elif compute:
                op, kind = name.rsplit(":", 1)
                category = next((c for c, matches in CATEGORIES if matches(op, kind)), OTHER)
                seconds[category] = seconds.get(category, 0.0) + duration
                ops[kind] = ops.get(kind, 0.0) + duration
                start = line.timestamp_ns * 1000 + event.offset_ps
                intervals.append((start, start + event.duration_ps))
    return Profile(steps, wall, _union(intervals) / 1e12, seconds, ops)


def _union(intervals: list[tuple[int, int]]) -> int:
    covered, end = 0, None
    for first, last in sorted(intervals):
        if end is None or first > end:
            covered, end = covered + last - first, last
        elif last > end:
            covered, end = covered + last - end, last
    return covered
