r"""Trains a digit classifier on MNIST, evaluates it on the test split and exports a SavedModel.

python scripts/train.py --model=lenet
python scripts/train.py --model=mlp --data_dir=/path/to/idx/files   # fully offline
python scripts/train.py --recipe=mxnet_lenet --epochs=5              # a classic setup; flags override it
"""

from __future__ import annotations

import dataclasses
import sys
import time

import common
from absl import app, flags

from mnist_tf import config as config_lib
from mnist_tf import recipes, train

_defaults = config_lib.Config()

flags.DEFINE_enum(
    "recipe",
    None,
    list(recipes.RECIPES),
    "A classic setup by name (README, Recipes): its values replace the defaults of the flags not given.",
)
flags.DEFINE_enum("model", _defaults.model, config_lib.MODELS, "Architecture to train.")
common.define_data_flags()
flags.adopt_module_key_flags(common)  # --helpshort lists them with this script's own flags
flags.DEFINE_string("model_dir", None, "Checkpoints, TensorBoard logs, results.json. Default runs/<model>/<time>.")
flags.DEFINE_string(
    "export_dir", _defaults.export_dir, "SavedModels go to <export_dir>/<model>/<version>; empty: no export."
)
flags.DEFINE_integer("epochs", _defaults.epochs, "Passes over the training set.", lower_bound=1)
flags.DEFINE_integer("batch_size", _defaults.batch_size, "Global training batch size.", lower_bound=1)
flags.DEFINE_integer("eval_batch_size", _defaults.eval_batch_size, "Evaluation batch size.", lower_bound=1)
flags.DEFINE_enum("optimizer", _defaults.optimizer, config_lib.OPTIMIZERS, "Optimizer.")
flags.DEFINE_float("learning_rate", _defaults.learning_rate, "Peak learning rate.", lower_bound=0.0)
flags.DEFINE_enum("lr_schedule", _defaults.lr_schedule, config_lib.LR_SCHEDULES, "Learning-rate schedule.")
flags.DEFINE_float("momentum", _defaults.momentum, "Momentum of the momentum/nesterov optimizers.")
flags.DEFINE_float("weight_decay", _defaults.weight_decay, "L2 penalty on kernels (not biases).", lower_bound=0.0)
flags.DEFINE_integer("seed", _defaults.seed, "Seed of weights, shuffling and dropout: CPU runs repeat exactly.")
flags.DEFINE_integer(
    "validation_size",
    None,
    "Training images held out for validation (0: none). Default: 5000 of MNIST's, 200 of the digits'.",
    lower_bound=0,
)
flags.DEFINE_integer(
    "early_stopping_patience",
    _defaults.early_stopping_patience,
    "Stop when the validation loss has not improved for this many epochs, and keep the best epoch's weights (0: off).",
    lower_bound=0,
)
flags.DEFINE_enum(
    "loss",
    _defaults.loss,
    config_lib.LOSSES,
    "Training loss: cross_entropy, or logcosh / mse between softmax probabilities and one-hot labels.",
)
flags.DEFINE_enum("layers", _defaults.layers, config_lib.LAYERS, "Our low-level layers, or Keras built-ins.")
flags.DEFINE_enum("activation", _defaults.activation, config_lib.ACTIVATIONS, "Hidden-layer activation.")
flags.DEFINE_enum(
    "kernel_initializer",
    _defaults.kernel_initializer,
    config_lib.INITIALIZERS,
    "Kernel initializer: auto (He for ReLUs, Glorot otherwise), he_uniform, glorot_uniform, uniform (+-0.05).",
)
flags.DEFINE_float("dropout", None, "Dropout rate after hidden dense layers (default: per model).")
flags.DEFINE_float("conv_dropout", None, "Dropout rate after the convolutions of lenet and cnn (default: per model).")
flags.DEFINE_list(
    "hidden_units", None, "Hidden dense sizes: mlp e.g. 800 or 500,500; lenet one size (default: per model)."
)
flags.DEFINE_list("filters", None, "LeNet conv filters, e.g. 20,50 (default: per model).")
flags.DEFINE_enum(
    "strategy",
    _defaults.strategy,
    config_lib.STRATEGIES,
    "tf.distribute strategy: default (no distribution), one_device, mirrored (local GPUs), multi_worker "
    "(several machines, from $TF_CONFIG), tpu.",
)
flags.DEFINE_integer(
    "num_gpus", None, "Local GPUs for mirrored (the first N) or one_device (0: the CPU). Default: all.", lower_bound=0
)
flags.DEFINE_string("tpu", _defaults.tpu, "TPU: empty finds a local or Colab one; or a name, or grpc://HOST:PORT.")
flags.DEFINE_enum(
    "dtype",
    _defaults.dtype,
    config_lib.DTYPES,
    "Compute dtype: float32, or mixed precision with float32 weights: bfloat16 (TPUs, recent CPUs) or float16 "
    "(GPUs, with loss scaling). Logits, loss and the SavedModel's outputs stay float32.",
)
flags.DEFINE_integer(
    "steps_per_loop", _defaults.steps_per_loop, "Training steps per tf.function call (TPUs like 100+).", lower_bound=1
)
flags.DEFINE_enum(
    "jit_compile", _defaults.jit_compile, config_lib.JIT_COMPILE, "XLA for the train step; auto: GPU/TPU only."
)
flags.DEFINE_integer(
    "log_every_steps",
    _defaults.log_every_steps,
    "TensorBoard: train loss/accuracy of the last N steps every N steps (0: per epoch only).",
    lower_bound=0,
)
flags.DEFINE_list(
    "histograms", list(_defaults.histograms), "TensorBoard histograms per epoch: weights, gradients, or both."
)
flags.DEFINE_list("profile_steps", None, "TensorBoard profile of global steps FIRST,LAST (1-based), e.g. 20,25.")
flags.DEFINE_enum(
    "nan_policy",
    _defaults.nan_policy,
    config_lib.NAN_POLICIES,
    "On a NaN/Inf loss: stop (exit non-zero, keeping the last good checkpoint) or skip the step's update.",
)
flags.DEFINE_bool(
    "fresh",
    False,
    "Start over: delete the checkpoints, logs and results already in --model_dir instead of resuming from them.",
)

for _name in ("hidden_units", "filters", "profile_steps"):
    flags.register_validator(
        _name,
        lambda values: values is None or all(v.strip().isdigit() for v in values),
        message=f"--{_name} takes comma-separated positive integers",
    )

FLAGS = flags.FLAGS


def _ints(name: str) -> tuple[int, ...] | None:
    values = getattr(FLAGS, name)
    return None if values is None else tuple(int(v) for v in values)


def config_from_flags() -> config_lib.Config:
    """Every Config field comes from the flag of the same name; a field without a flag fails here, loudly.

    With --recipe, the flags given on the command line override the recipe, and the recipe the other flags'
    defaults.
    """
    values = {field.name: getattr(FLAGS, field.name) for field in dataclasses.fields(config_lib.Config)}
    values.update(
        export_dir=FLAGS.export_dir or None,
        hidden_units=_ints("hidden_units"),
        filters=_ints("filters"),
        histograms=tuple(FLAGS.histograms),
        profile_steps=_ints("profile_steps") or (),
    )
    if FLAGS.recipe:
        config = recipes.config(FLAGS.recipe, **{name: v for name, v in values.items() if FLAGS[name].present})
    else:
        config = config_lib.Config(**values)
    model_dir = FLAGS.model_dir or f"runs/{config.name}/{time.strftime('%Y%m%d-%H%M%S')}"
    return dataclasses.replace(config, model_dir=model_dir)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    config = config_from_flags()
    try:
        train.run(config, fresh=FLAGS.fresh)
    except KeyboardInterrupt:  # a second Ctrl-C: the first one asks for a checkpoint at the next step
        print(
            f"\ninterrupted; run the same command with --model_dir={config.model_dir} to resume from its last "
            "checkpoint",
            file=sys.stderr,
        )
        sys.exit(130)


if __name__ == "__main__":
    common.run(main)
