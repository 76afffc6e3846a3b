"""The run configuration: one frozen dataclass that scripts build from flags and the library reads.

Nothing below `scripts/` reads absl flags; tests build a `Config` directly. Values that depend on the model
(`hidden_units`, `dropout`) default to `None` and are filled in by `resolve()`.
"""

from __future__ import annotations

import dataclasses
import math

from mnist_tf.errors import MnistTfError

MODELS = ("lenet", "mlp")
DATASETS = ("mnist", "fashion_mnist")
SOURCES = ("auto", "idx", "tfds")
LAYERS = ("ours", "keras")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "rmsprop", "adagrad")
LR_SCHEDULES = ("constant", "cosine", "one_cycle")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "gelu")
STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")
DTYPES = ("float32", "bfloat16", "float16")
JIT_COMPILE = ("auto", "on", "off")
HISTOGRAMS = ("weights", "gradients")
NAN_POLICIES = ("stop", "skip")

# Per-model defaults for values whose good setting depends on the architecture.
MODEL_DEFAULTS = {
    "lenet": {"hidden_units": (500,), "dropout": 0.25, "filters": (20, 50)},
    "mlp": {"hidden_units": (800, 800), "dropout": 0.2, "filters": ()},
}


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything one training run needs. Field docs are the flag docs in `scripts/train.py`."""

    model: str = "lenet"
    dataset: str = "mnist"
    data_dir: str | None = None
    source: str = "auto"
    tfds_data_dir: str | None = None
    model_dir: str = "runs/latest"
    export_dir: str | None = "saved_models"
    epochs: int = 4
    batch_size: int = 256
    eval_batch_size: int = 1000
    optimizer: str = "adam"
    learning_rate: float = 4e-3
    lr_schedule: str = "one_cycle"
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 42
    validation_size: int = 5000
    layers: str = "ours"
    activation: str = "relu"
    dropout: float | None = None
    hidden_units: tuple[int, ...] | None = None
    filters: tuple[int, ...] | None = None
    strategy: str = "default"
    num_gpus: int | None = None
    tpu: str = ""
    dtype: str = "float32"
    steps_per_loop: int = 1
    jit_compile: str = "auto"
    log_every_steps: int = 100
    histograms: tuple[str, ...] = ()
    profile_steps: tuple[int, ...] = ()
    nan_policy: str = "stop"

    def resolve(self) -> Config:
        """Returns a copy with model defaults filled in, after checking every value; raises MnistTfError."""
        _check_choice("model", self.model, MODELS)
        defaults = MODEL_DEFAULTS[self.model]
        resolved = dataclasses.replace(
            self,
            hidden_units=tuple(defaults["hidden_units"] if self.hidden_units is None else self.hidden_units),
            dropout=defaults["dropout"] if self.dropout is None else self.dropout,
            filters=tuple(defaults["filters"] if self.filters is None else self.filters),
        )
        resolved._validate()
        return resolved

    def _validate(self) -> None:
        for name, choices in (
            ("dataset", DATASETS),
            ("source", SOURCES),
            ("layers", LAYERS),
            ("optimizer", OPTIMIZERS),
            ("lr_schedule", LR_SCHEDULES),
            ("activation", ACTIVATIONS),
            ("strategy", STRATEGIES),
            ("dtype", DTYPES),
            ("jit_compile", JIT_COMPILE),
            ("nan_policy", NAN_POLICIES),
        ):
            _check_choice(name, getattr(self, name), choices)
        for name in ("epochs", "batch_size", "eval_batch_size", "steps_per_loop"):
            if getattr(self, name) < 1:
                raise MnistTfError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.validation_size < 0:
            raise MnistTfError(f"--validation_size must be 0 or more, got {self.validation_size}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise MnistTfError(f"--learning_rate must be a positive number, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            raise MnistTfError(f"--momentum must be in [0, 1), got {self.momentum}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise MnistTfError(f"--weight_decay must be 0 or more, got {self.weight_decay}")
        if not 0 <= self.dropout < 1:
            raise MnistTfError(f"--dropout must be in [0, 1), got {self.dropout}")
        if any(units < 1 for units in self.hidden_units):
            raise MnistTfError(f"--hidden_units must be positive integers, got {list(self.hidden_units)}")
        if self.model == "lenet" and len(self.hidden_units) != 1:
            raise MnistTfError(f"--hidden_units for lenet is one dense layer size, got {list(self.hidden_units)}")
        if self.model == "lenet" and (len(self.filters) != 2 or min(self.filters) < 1):
            raise MnistTfError(f"--filters for lenet is two positive conv sizes, got {list(self.filters)}")
        if self.model == "mlp" and self.filters:
            raise MnistTfError("--filters applies to lenet only")
        if self.num_gpus is not None and self.num_gpus < 0:
            raise MnistTfError(f"--num_gpus must be 0 or more, got {self.num_gpus}")
        if self.num_gpus is not None and self.strategy not in ("one_device", "mirrored"):
            raise MnistTfError("--num_gpus applies to --strategy=one_device or mirrored")
        if self.tpu and self.strategy != "tpu":
            raise MnistTfError("--tpu applies to --strategy=tpu")
        if self.log_every_steps < 0:
            raise MnistTfError(f"--log_every_steps must be 0 (per epoch only) or more, got {self.log_every_steps}")
        for kind in self.histograms:
            _check_choice("histograms", kind, HISTOGRAMS)
        if self.profile_steps and (
            len(self.profile_steps) != 2 or not 1 <= self.profile_steps[0] <= self.profile_steps[1]
        ):
            raise MnistTfError(
                f"--profile_steps is FIRST,LAST global steps with 1 <= FIRST <= LAST, got {list(self.profile_steps)}"
            )
        if self.source == "idx" and not self.data_dir:
            raise MnistTfError("--source=idx needs --data_dir (a folder with the four IDX files)")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise MnistTfError(f"--{name}={value!r} is not one of: {', '.join(choices)}")
