"""The run configuration: every setting once, with its help text, its choices and its bounds.

`Config` is one frozen dataclass that the library reads; `scripts/` generate their absl flags from its fields
(`settings()`), so adding a setting is one field here. Choices are the keys of the registries that implement
them (models, losses, optimizers, ...). Values that depend on the model (`hidden_units`, `dropout`, ...) or on
the data set (`validation_size`) default to `None` and are filled in by `resolve()`. A named recipe
(`mnist_tf.recipes`) is a set of values for these same fields.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from mnist_tf import distribute
from mnist_tf.data import sources
from mnist_tf.data.augment import DISTORTIONS
from mnist_tf.errors import MnistTfError
from mnist_tf.nn import initializers, losses, models, optimizers
from mnist_tf.nn import layers as nn_layers  # a Config field is called `layers`

SEEDS = 2**32  # NumPy's legacy seeding (Keras's set_random_seed) takes 0 to 2**32 - 1


def _setting(
    default: Any,
    help: str,
    *,
    choices: Iterable[str] = (),
    lower_bound: float | None = None,
    zero_means: str = "",
    hparam: bool = False,
    flag: bool = True,
) -> Any:
    """A Config field: `help` is its flag's help; `hparam` puts it in TensorBoard's HParams; `flag=False` leaves it
    out of the generated flags; `zero_means` says what 0 does where 0 is the lower bound."""
    metadata = {
        "help": help,
        "choices": tuple(choices),
        "lower_bound": lower_bound,
        "zero_means": zero_means,
        "hparam": hparam,
        "flag": flag,
    }
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything one training run needs."""

    model: str = _setting("lenet", "Architecture to train.", choices=models.MODELS, hparam=True)
    recipe: str | None = _setting(None, "The recipe these values came from: names the run and its export.", flag=False)
    given: tuple[str, ...] = _setting(
        (),
        "The settings given on the command line, by name: what the run would choose for them (fine-tuning's defaults, "
        "a batch that fits a small data set) never replaces them, even where they equal the default.",
        flag=False,
    )
    dataset: str = _setting(
        "mnist",
        "Data set; its defaults (augmentation, not-digits, validation) apply. With --source=folder, the kind of "
        "images the folder holds (the class names are its sub-folders').",
        choices=sources.DATASETS,
    )
    data_dir: str | None = _setting(
        None,
        "Folder with the four LeCun IDX files (train-images-idx3-ubyte.gz ...), gzipped or not: works offline; "
        f"with --source=folder, a folder of images, one sub-folder per class, or a zip file of one (the draw-a-digit "
        f"page's download). Defaults to ${sources.DATA_DIR_ENV}.",
    )
    source: str = _setting(
        "auto",
        "Where data comes from: idx (--data_dir), tfds (tensorflow-datasets; with --data_dir, tfds builds its copy "
        "from those files instead of downloading), sklearn (scikit-learn's bundled 8x8 digits: --dataset=digits), "
        "folder (image files in --data_dir/<class>/, or in its train/<class>/ and test/<class>/; decoded once, "
        "cached), auto (sklearn for the digits, else idx when a data dir is given, else tfds).",
        choices=sources.SOURCES,
    )
    tfds_data_dir: str | None = _setting(None, "tensorflow-datasets cache folder (default: tfds's own).")
    model_dir: str | None = _setting(
        None,
        "Checkpoints, TensorBoard logs, results.json. Default: runs/<name>/<time>, named when the run starts (with "
        "-2, -3 ... when other runs started in the same second).",
    )
    export_dir: str | None = _setting(
        "saved_models", "SavedModels go to <export_dir>/<name>/<version>; empty: no export."
    )
    litert: bool = _setting(
        True,
        "Also export LiteRT files (float32, dynamic-range, int8) to <export_dir>/litert/<name>/<version>, each "
        "verified on the test split; a quantized one that loses accuracy is refused. Needs ai-edge-litert.",
    )
    init_from: str | None = _setting(
        None,
        "Start from trained weights instead of random ones: a SavedModel (a version or base folder), a run's "
        "--model_dir, or one of its checkpoints (.../checkpoints/ckpt-N). The same architecture loads every "
        "weight; data with another number of classes keeps the body and gets a new head. A resumed run ignores it.",
    )
    replay: float | None = _setting(
        None,
        "Fine-tuning (--init_from on a small data set, mnist_tf/fine_tuning.py): the share of each epoch drawn from "
        "the starting model's own training data, so that it forgets nothing it was not asked to change (0: off). "
        "Default: 0.5 when fine-tuning.",
        lower_bound=0.0,
        zero_means="off",
        hparam=True,
    )
    distillation: float | None = _setting(
        None,
        "Fine-tuning: the weight of a pull toward the starting model's own answers (its 11-way softmax: the 10 "
        "classes and not a digit), on the not-digit images and on the digits it already reads right, so that it "
        "forgets nothing it was not asked to change (Learning without Forgetting, Li and Hoiem 2016; 0: off). "
        "Default: 1 when fine-tuning a model of the same classes.",
        lower_bound=0.0,
        zero_means="off",
        hparam=True,
    )
    replay_dir: str | None = _setting(
        None,
        "Where fine-tuning reads the starting model's training data to replay it and to calibrate on, when not "
        "where that model was trained from: a folder with the four IDX files.",
    )
    epochs: int = _setting(6, "Passes over the training set.", lower_bound=1, hparam=True)
    batch_size: int = _setting(256, "Global training batch size.", lower_bound=1, hparam=True)
    eval_batch_size: int = _setting(1000, "Evaluation batch size.", lower_bound=1)
    optimizer: str = _setting("adam", "Optimizer.", choices=optimizers.OPTIMIZERS, hparam=True)
    learning_rate: float = _setting(4e-3, "Peak learning rate.", lower_bound=0.0, hparam=True)
    lr_schedule: str = _setting("one_cycle", "Learning-rate schedule.", choices=optimizers.LR_SCHEDULES, hparam=True)
    momentum: float = _setting(0.9, "Momentum of the momentum/nesterov optimizers, and Adam's beta_1.", hparam=True)
    beta_2: float = _setting(
        0.999, "Adam's beta_2: how slowly its estimate of the gradients' scale moves.", hparam=True
    )
    weight_decay: float = _setting(
        0.0,
        "L2 penalty on kernels (not biases); with --init_from, on their distance from the starting weights (L2-SP). "
        "Default: 0, and 0.01 when fine-tuning.",
        lower_bound=0.0,
        hparam=True,
    )
    seed: int = _setting(
        42, "Seed of weights, shuffling and dropout: CPU runs repeat exactly.", lower_bound=0, hparam=True
    )
    validation_size: int | None = _setting(
        None,
        "Training images held out for validation (0: none; calibration then uses the training images). Default: "
        "5000 of MNIST's, Fashion-MNIST's and KMNIST's, 10000 of EMNIST's, 200 of the digits', none of a folder's.",
        lower_bound=0,
    )
    checkpoint_every_steps: int = _setting(
        0, "Also checkpoint every N global steps, mid-epoch (0: off).", lower_bound=0, zero_means="off"
    )
    checkpoint_every_seconds: int = _setting(
        300,
        "Also checkpoint at the first step boundary N seconds after the last checkpoint, so that a kill or a crash "
        "loses at most that much training (0: off). Every epoch's end is checkpointed too; the last few are kept.",
        lower_bound=0,
        zero_means="off",
    )
    early_stopping_patience: int = _setting(
        0,
        "Stop when the validation loss has not improved for this many epochs, and keep the best epoch's weights "
        "(0: off).",
        lower_bound=0,
        zero_means="off",
        hparam=True,
    )
    loss: str = _setting(
        "cross_entropy",
        "Training loss: cross_entropy, or logcosh / mse between softmax probabilities and one-hot labels.",
        choices=losses.LOSSES,
        hparam=True,
    )
    label_smoothing: float = _setting(
        0.0,
        "Train on cross-entropy against smoothed targets: 1 - s + s/10 for the label, s/10 for the others (0: off). "
        "Validation and test losses stay plain cross-entropy.",
        lower_bound=0.0,
        zero_means="off",
        hparam=True,
    )
    augment: bool | None = _setting(
        None,
        "Distort each training image at random on the device that trains (--augmentation says how), drawn from "
        "--seed and the step (a run still repeats and resumes exactly). Default: on for the convolutional models "
        "(lenet, cnn, bncnn), off for mlp.",
        hparam=True,
    )
    augmentation: str | None = _setting(
        None,
        "What --augment varies: handwriting (rotation, scale, shear, shift, stroke width) or objects (mirrored "
        "left to right, half of them). Default: objects for fashion_mnist, handwriting for the others.",
        choices=DISTORTIONS,
        hparam=True,
    )
    augment_strength: float = _setting(
        1.0,
        "How strong --augment is: for handwriting, 1 is up to +-12 degrees of rotation, +-12% of scale, +-8 "
        "degrees of shear and +-2 pixels of shift; 0.5 half of that.",
        lower_bound=0.0,
        hparam=True,
    )
    not_digits: float | None = _setting(
        None,
        "Not-digit images (font and handwritten letters, scribbles, shapes, blank paper, noise, digit pairs, "
        "doodles, operators, outlines: "
        "mnist_tf/not_a_digit/not_digits.py) added to every training batch, as a share of it; the model learns to "
        "answer them with a flat distribution (outlier exposure), so that it can say 'not a digit' (0: off). "
        "Default: 0.125 for the handwritten digits (mnist, emnist_digits, digits, a folder of them), 0 for other "
        "data.",
        lower_bound=0.0,
        zero_means="off",
        hparam=True,
    )
    captures: float | None = _setting(
        None,
        "Training digits redrawn as people capture them (pen, paper, light, framing, camera: "
        "mnist_tf/data/captures.py), preprocessed as a user's file is, and added to the training set as a share of "
        "it (0: off). Default: 0.075 for the handwritten digits (as --not_digits), 0 for other data.",
        lower_bound=0.0,
        zero_means="off",
        hparam=True,
    )
    not_digit_weight: float = _setting(
        0.5, "Weight of the not-digit images' loss against the digits' (with --not_digits).", lower_bound=0.0
    )
    digit_odds_weight: float = _setting(
        1.0,
        "Weight of the loss that teaches the log-sum-exp of the logits to be the log-odds that an image is a digit "
        "at all (binary cross-entropy: the digits 1, the not-digit images 0; with --not_digits). The export's "
        "is_digit then asks that an image be a digit and its top class be right; at 0, only the latter.",
        lower_bound=0.0,
        hparam=True,
    )
    digit_acceptance: float = _setting(
        0.99,
        "Share of validation digits the export accepts as digits: sets the threshold of its is_digit output "
        "(on its digit_score: mnist_tf/not_a_digit/decision.py).",
    )
    layers: str = _setting(
        "ours", "Our low-level layers, or Keras built-ins.", choices=models.LAYER_LIBRARIES, hparam=True
    )
    activation: str = _setting("relu", "Hidden-layer activation.", choices=nn_layers.HIDDEN_ACTIVATIONS, hparam=True)
    kernel_initializer: str = _setting(
        "auto",
        "Kernel initializer: auto (He for ReLUs, Glorot otherwise), he_uniform, glorot_uniform, uniform (+-0.05).",
        choices=("auto", *initializers.KERNEL_INITIALIZERS),
        hparam=True,
    )
    dropout: float | None = _setting(None, "Dropout rate after hidden dense layers (default: per model).", hparam=True)
    conv_dropout: float | None = _setting(
        None, "Dropout rate after the convolutions of lenet, cnn and bncnn (default: per model).", hparam=True
    )
    hidden_units: tuple[int, ...] | None = _setting(
        None,
        "Hidden sizes: mlp any number, e.g. 800 or 500,500; lenet and cnn one dense size; bncnn its head's filters "
        "(default: per model).",
        hparam=True,
    )
    filters: tuple[int, ...] | None = _setting(
        None,
        "Filters of the convolutions (lenet, cnn) or of each block (bncnn), e.g. 20,50 (default: per model).",
        hparam=True,
    )
    kernel_sizes: tuple[int, ...] | None = _setting(
        None,
        "Kernel size of each convolution of lenet and cnn, e.g. 5,3 (default: 5 for lenet, 3 for cnn).",
        hparam=True,
    )
    strategy: str = _setting(
        "default",
        "tf.distribute strategy: default (no distribution), one_device, mirrored (local GPUs), multi_worker "
        "(several machines, from $TF_CONFIG), tpu.",
        choices=distribute.STRATEGIES,
        hparam=True,
    )
    num_gpus: int | None = _setting(
        None, "Local GPUs for mirrored (the first N) or one_device (0: the CPU). Default: all.", lower_bound=0
    )
    tpu: str = _setting("", "TPU: empty finds a local or Colab one; or a name, or grpc://HOST:PORT.")
    dtype: str = _setting(
        "auto",
        "Compute dtype: auto (the fastest on this hardware: bfloat16 on TPUs and CPUs with native bfloat16, float16 "
        "on GPUs with tensor cores, else float32), float32, or mixed precision with float32 weights: bfloat16 or "
        "float16 (with loss scaling). Logits, loss and the SavedModel's outputs stay float32.",
        choices=distribute.DTYPES,
        hparam=True,
    )
    steps_per_loop: int = _setting(1, "Training steps per tf.function call (TPUs like 100+).", lower_bound=1)
    jit_compile: str = _setting("auto", "XLA for the train step; auto: GPU/TPU only.", choices=distribute.JIT_SETTINGS)
    log_every_steps: int = _setting(
        100,
        "TensorBoard: train loss/accuracy of the last N steps every N steps (0: per epoch only).",
        lower_bound=0,
        zero_means="per epoch only",
    )
    histograms: tuple[str, ...] = _setting(
        (), "TensorBoard histograms per epoch: weights, gradients, or both.", choices=("weights", "gradients")
    )
    profile_steps: tuple[int, ...] = _setting(
        (), "TensorBoard profile of global steps FIRST,LAST (1-based), e.g. 20,25."
    )
    nan_policy: str = _setting(
        "stop",
        "On a NaN/Inf loss: stop (exit non-zero, keeping the last good checkpoint) or skip the step's update.",
        choices=("stop", "skip"),
    )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Config:
        """A Config from its JSON form (a run's config.json, an export's metadata): lists back to tuples."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    @property
    def data_name(self) -> str:
        """What the model learns from, as lines and export folders say it: the data set, or a folder's own name."""
        if self.source == "folder" and self.data_dir:
            name = os.path.basename(os.path.normpath(self.data_dir)).removesuffix(".zip")
            return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "folder"
        return self.dataset

    @property
    def digit_score(self) -> str:
        """What a resolved run's probabilities and digit_score are of (`decision.SCORES`): a digit, and its class,
        when it learned whether an image is a digit at all (--not_digits with --digit_odds_weight); else its class."""
        return "digit_and_top_class" if self.not_digits and self.digit_odds_weight else "top_class"

    @property
    def name(self) -> str:
        """What the run is called: its recipe, else its model. Names its export: saved_models/<name>/<version>."""
        return self.recipe or self.model

    def resolve(self) -> Config:
        """A copy with the model's and data set's defaults filled in; every value checked (MnistTfError)."""
        for name in ("model", "dataset"):
            _check_choice(name, getattr(self, name), SETTINGS[name].choices)
        defaults = {"filters": (), "kernel_sizes": (), "conv_dropout": 0.0, **models.settings(self.model)}
        dataset = sources.DATASETS[self.dataset]
        # A folder's classes are known once it is read: plan.prepare decides its share then (no I/O here).
        folder = self.source == "folder"
        not_digits = self.not_digits if folder else self.not_digits_for(dataset.class_names)
        captures = self.captures if folder else self.captures_for(dataset.class_names)
        validation_size = 0 if self.source == "folder" else dataset.validation_size
        resolved = dataclasses.replace(
            self,
            hidden_units=tuple(defaults["hidden_units"] if self.hidden_units is None else self.hidden_units),
            dropout=defaults["dropout"] if self.dropout is None else self.dropout,
            augment=bool(defaults["filters"]) if self.augment is None else self.augment,  # convolutions: shapes
            augmentation=self.augmentation or dataset.augmentation,
            not_digits=not_digits,
            captures=captures,
            conv_dropout=defaults["conv_dropout"] if self.conv_dropout is None else self.conv_dropout,
            filters=tuple(defaults["filters"] if self.filters is None else self.filters),
            kernel_sizes=tuple(defaults["kernel_sizes"] if self.kernel_sizes is None else self.kernel_sizes),
            validation_size=validation_size if self.validation_size is None else self.validation_size,
            model_dir=self.model_dir or f"runs/{self.name}/{time.strftime('%Y%m%d-%H%M%S')}",
        )
        resolved._validate()
        return resolved

    def not_digits_for(self, class_names: tuple[str, ...]) -> float:
        """--not_digits, or its default for data of `class_names`: a share of not-digit images for the digits of
        handwriting, none for other classes (not a digit is not a shoe)."""
        return self._for_handwritten_digits(self.not_digits, 0.125, class_names)

    def captures_for(self, class_names: tuple[str, ...]) -> float:
        """--captures, or its default for data of `class_names`: digits as people capture them, for handwriting."""
        return self._for_handwritten_digits(self.captures, 0.075, class_names)

    def _for_handwritten_digits(self, value: float | None, default: float, class_names: tuple[str, ...]) -> float:
        if value is not None:
            return value
        digits = sources.DATASETS[self.dataset].handwritten_digits and class_names == sources.DIGITS
        return default if digits else 0.0

    def _validate(self) -> None:
        for setting in SETTINGS.values():
            value = getattr(self, setting.name)
            if setting.choices:
                for one in value if setting.sequence else (value,):
                    _check_choice(setting.name, one, setting.choices)
            elif setting.type is int and setting.lower_bound is not None and value is not None:
                _check_lower_bound(setting, value)
        if self.seed >= SEEDS:
            raise MnistTfError(f"--seed must be below 2**32 ({SEEDS:,}), got {self.seed:,}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise MnistTfError(f"--learning_rate must be a positive number, got {self.learning_rate}")
        for name in ("momentum", "beta_2"):
            if not 0 <= getattr(self, name) < 1:
                raise MnistTfError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise MnistTfError(f"--weight_decay must be 0 or more, got {self.weight_decay}")
        for name in ("dropout", "conv_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise MnistTfError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.label_smoothing < 1:
            raise MnistTfError(f"--label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.label_smoothing and self.loss != "cross_entropy":
            raise MnistTfError(f"--label_smoothing applies to --loss=cross_entropy, not {self.loss}")
        if not (math.isfinite(self.augment_strength) and self.augment_strength >= 0):
            raise MnistTfError(f"--augment_strength must be 0 or more, got {self.augment_strength}")
        for name in ("not_digits", "captures"):
            share = getattr(self, name)
            if share is not None and not (math.isfinite(share) and 0 <= share <= 1):
                raise MnistTfError(f"--{name} must be in [0, 1], got {share}")
        if self.replay is not None and not (math.isfinite(self.replay) and 0 <= self.replay < 1):
            raise MnistTfError(f"--replay must be in [0, 1), got {self.replay}")
        if (self.replay or self.replay_dir or self.distillation) and not self.init_from:
            raise MnistTfError("--replay, --replay_dir and --distillation apply to fine-tuning: a run with --init_from")
        if self.distillation is not None and not (math.isfinite(self.distillation) and self.distillation >= 0):
            raise MnistTfError(f"--distillation must be 0 or more, got {self.distillation}")
        for name in ("not_digit_weight", "digit_odds_weight"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise MnistTfError(f"--{name} must be 0 or more, got {getattr(self, name)}")
        if not 0.5 <= self.digit_acceptance <= 1:
            raise MnistTfError(f"--digit_acceptance must be in [0.5, 1], got {self.digit_acceptance}")
        if self.early_stopping_patience and not self.validation_size:
            raise MnistTfError("--early_stopping_patience needs a validation split (--validation_size above 0)")
        self._validate_architecture()
        if self.num_gpus is not None and self.strategy not in ("one_device", "mirrored"):
            raise MnistTfError("--num_gpus applies to --strategy=one_device or mirrored")
        if self.tpu and self.strategy != "tpu":
            raise MnistTfError("--tpu applies to --strategy=tpu")
        if self.profile_steps and (
            len(self.profile_steps) != 2 or not 1 <= self.profile_steps[0] <= self.profile_steps[1]
        ):
            raise MnistTfError(
                f"--profile_steps is FIRST,LAST global steps with 1 <= FIRST <= LAST, got {list(self.profile_steps)}"
            )

    def _validate_architecture(self) -> None:
        """The sizes fit the model's builder: the settings it takes, with as many entries as it takes."""
        if any(units < 1 for units in self.hidden_units):
            raise MnistTfError(f"--hidden_units must be positive integers, got {list(self.hidden_units)}")
        takes, lengths = models.settings(self.model), models.lengths(self.model)
        for name in ("filters", "kernel_sizes", "conv_dropout"):
            if getattr(self, name) and name not in takes:
                *others, last = [model for model in models.MODELS if name in models.settings(model)]
                users = f"{', '.join(others)} and {last}" if others else last
                raise MnistTfError(f"--{name} applies to {users} only")
        for name, what in (("hidden_units", "dense layer size"), ("filters", "positive conv size")):
            value, length = getattr(self, name), lengths.get(name)
            if length is not None and (len(value) != length or min(value) < 1):
                raise MnistTfError(f"--{name} for {self.model} is {_count(length, what)}, got {list(value)}")
        if self.kernel_sizes and (len(self.kernel_sizes) != lengths["kernel_sizes"] or min(self.kernel_sizes) < 1):
            raise MnistTfError(
                f"--kernel_sizes for {self.model} is {_count(lengths['kernel_sizes'], 'positive size')}, got "
                f"{list(self.kernel_sizes)}"
            )


@dataclasses.dataclass(frozen=True)
class Setting:
    """One Config field as a flag sees it: `type` is int, float, str or bool, for lists their items' type."""

    name: str
    type: type
    optional: bool  # None is a value (for lists: the flag may be left unset)
    sequence: bool  # a comma-separated list
    default: Any
    help: str
    choices: tuple[str, ...]
    lower_bound: float | None
    zero_means: str
    hparam: bool
    flag: bool


def _setting_of(field: dataclasses.Field, annotation: Any) -> Setting:
    kinds = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    kind = next(k for k in kinds if k is not type(None))
    sequence = typing.get_origin(kind) is tuple
    return Setting(
        name=field.name,
        type=typing.get_args(kind)[0] if sequence else kind,
        optional=type(None) in kinds,
        sequence=sequence,
        default=field.default,
        **field.metadata,
    )


def settings() -> list[Setting]:
    """Every Config field, in order, with what a flag needs to know about it."""
    hints = typing.get_type_hints(Config)
    return [_setting_of(field, hints[field.name]) for field in dataclasses.fields(Config)]


SETTINGS = {setting.name: setting for setting in settings()}
HPARAMS = tuple(name for name, setting in SETTINGS.items() if setting.hparam)  # TensorBoard's HParams dashboard

_NUMBERS = {1: "one", 2: "two", 3: "three"}


def _count(number: int, what: str) -> str:
    return f"{_NUMBERS.get(number, number)} {what}{'s' if number > 1 else ''}"


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise MnistTfError(f"--{name}={value!r} is not one of: {', '.join(choices)}")


def _check_lower_bound(setting: Setting, value: int) -> None:
    if value >= setting.lower_bound:
        return
    if setting.lower_bound == 0:
        zero = f" ({setting.zero_means})" if setting.zero_means else ""
        raise MnistTfError(f"--{setting.name} must be 0{zero} or more, got {value}")
    raise MnistTfError(f"--{setting.name} must be at least {setting.lower_bound}, got {value}")


def left_to_choose(config: Config, name: str) -> bool:
    """Whether the run may choose setting `name`: not given on the command line, and at its default."""
    return name not in config.given and getattr(config, name) == SETTINGS[name].default
