"""The run configuration: one frozen dataclass that scripts build from flags and the library reads.

Nothing below `scripts/` reads absl flags; tests build a `Config` directly. Values that depend on the model
(`hidden_units`, `dropout`, ...) or on the data set (`validation_size`) default to `None` and are filled in by
`resolve()`. A named recipe (`mnist_tf.recipes`) is a set of values for these same fields.
"""

from __future__ import annotations

import dataclasses
import math

from mnist_tf.errors import MnistTfError

MODELS = ("lenet", "mlp", "cnn")
DATASETS = ("mnist", "fashion_mnist", "digits")
SOURCES = ("auto", "idx", "tfds", "sklearn")
LAYERS = ("ours", "keras")
INITIALIZERS = ("auto", "he_uniform", "glorot_uniform", "uniform")
LOSSES = ("cross_entropy", "logcosh", "mse")
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
    "lenet": {"hidden_units": (500,), "dropout": 0.25, "conv_dropout": 0.0, "filters": (20, 50)},
    "mlp": {"hidden_units": (800, 800), "dropout": 0.2, "conv_dropout": 0.0, "filters": ()},
    "cnn": {"hidden_units": (128,), "dropout": 0.5, "conv_dropout": 0.25, "filters": (32, 64)},
}
# Training images held out for validation by default: MNIST's customary 5,000; 200 of the digits' 1,597.
VALIDATION_SIZES = {"mnist": 5000, "fashion_mnist": 5000, "digits": 200}


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything one training run needs. Field docs are the flag docs in `scripts/train.py`."""

    model: str = "lenet"
    recipe: str | None = None  # the recipe these values came from: names the run and its export
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
    validation_size: int | None = None
    early_stopping_patience: int = 0
    loss: str = "cross_entropy"
    layers: str = "ours"
    activation: str = "relu"
    kernel_initializer: str = "auto"
    dropout: float | None = None
    conv_dropout: float | None = None
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

    @property
    def name(self) -> str:
        """What the run is called: its recipe, else its model. Names its export: saved_models/<name>/<version>."""
        return self.recipe or self.model

    def resolve(self) -> Config:
        """A copy with the model's and data set's defaults filled in; every value checked (MnistTfError)."""
        _check_choice("model", self.model, MODELS)
        _check_choice("dataset", self.dataset, DATASETS)
        defaults = MODEL_DEFAULTS[self.model]
        resolved = dataclasses.replace(
            self,
            hidden_units=tuple(defaults["hidden_units"] if self.hidden_units is None else self.hidden_units),
            dropout=defaults["dropout"] if self.dropout is None else self.dropout,
            conv_dropout=defaults["conv_dropout"] if self.conv_dropout is None else self.conv_dropout,
            filters=tuple(defaults["filters"] if self.filters is None else self.filters),
            validation_size=VALIDATION_SIZES[self.dataset] if self.validation_size is None else self.validation_size,
        )
        resolved._validate()
        return resolved

    def _validate(self) -> None:
        for name, choices in (
            ("source", SOURCES),
            ("layers", LAYERS),
            ("kernel_initializer", INITIALIZERS),
            ("loss", LOSSES),
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
        for name in ("dropout", "conv_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise MnistTfError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        if self.early_stopping_patience < 0:
            raise MnistTfError(f"--early_stopping_patience must be 0 (off) or more, got {self.early_stopping_patience}")
        if self.early_stopping_patience and not self.validation_size:
            raise MnistTfError("--early_stopping_patience needs a validation split (--validation_size above 0)")
        if any(units < 1 for units in self.hidden_units):
            raise MnistTfError(f"--hidden_units must be positive integers, got {list(self.hidden_units)}")
        if self.model != "mlp" and len(self.hidden_units) != 1:
            raise MnistTfError(
                f"--hidden_units for {self.model} is one dense layer size, got {list(self.hidden_units)}"
            )
        if self.model != "mlp" and (len(self.filters) != 2 or min(self.filters) < 1):
            raise MnistTfError(f"--filters for {self.model} is two positive conv sizes, got {list(self.filters)}")
        if self.model == "mlp" and self.filters:
            raise MnistTfError("--filters applies to lenet and cnn only")
        if self.model == "mlp" and self.conv_dropout:
            raise MnistTfError("--conv_dropout applies to lenet and cnn only")
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
