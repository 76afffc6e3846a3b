"""The PyTorch contender: the same model, initialization, optimizer, schedule, batches and precision as ours, in
the eager training loop a PyTorch user writes (channels-first images, `torch.autocast` for bfloat16).

It runs in its own process, like every contender, and imports torch only there: the benchmark runs without it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from mnist_tf.config import Config
from mnist_tf.data import pipeline
from mnist_tf.data.sources import NUM_CLASSES, Splits
from mnist_tf.errors import MnistTfError
from mnist_tf.nn import initializers, optimizers
from mnist_tf.training import build

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}
# Ours and Keras's initializers, as torch's: He uniform is Kaiming uniform with ReLU's gain, sqrt(6 / fan_in).
_INITIALIZERS: dict[str, Callable[[torch.Tensor], object]] = {
    "he_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
    "glorot_uniform": nn.init.xavier_uniform_,
    "uniform": lambda w: nn.init.uniform_(w, -0.05, 0.05),
}
# Keras's defaults where torch's differ (epsilon 1e-7, RMSprop's rho 0.9).
_OPTIMIZERS: dict[str, Callable[[list[nn.Parameter], float, Config], torch.optim.Optimizer]] = {
    "sgd": lambda params, lr, config: torch.optim.SGD(params, lr),
    "momentum": lambda params, lr, config: torch.optim.SGD(params, lr, momentum=config.momentum),
    "nesterov": lambda params, lr, config: torch.optim.SGD(params, lr, momentum=config.momentum, nesterov=True),
    "adam": lambda params, lr, config: torch.optim.Adam(params, lr, betas=(config.momentum, config.beta_2), eps=1e-7),
    "rmsprop": lambda params, lr, config: torch.optim.RMSprop(params, lr, alpha=0.9, eps=1e-7),
    "adagrad": lambda params, lr, config: torch.optim.Adagrad(params, lr, initial_accumulator_value=0.1, eps=1e-7),
}
_AUTOCAST = {"float32": None, "bfloat16": torch.bfloat16}
MODELS = ("mlp", "lenet", "cnn")  # what it builds: every architecture the race races, and cnn


def model(config: Config, image_shape: tuple[int, ...]) -> nn.Sequential:
    """`config.model` as torch modules, initialized as `models.Layers` initializes ours (biases zero)."""
    if config.model not in MODELS:
        raise MnistTfError(f"the pytorch contender builds {', '.join(MODELS)}, not {config.model}")
    rows, cols, channels = image_shape
    activation = _ACTIVATIONS[config.activation]
    layers: list[nn.Module] = []
    if config.model == "mlp":
        layers.append(nn.Flatten())
        width = rows * cols * channels
        for units in config.hidden_units:
            layers += [nn.Linear(width, units), activation(), *_dropout(config.dropout)]
            width = units
        layers.append(nn.Linear(width, NUM_CLASSES))
    else:
        pool_after_each = config.model == "lenet"
        for filters, size in zip(config.filters, config.kernel_sizes, strict=True):
            layers += [nn.Conv2d(channels, filters, size), activation()]
            layers += [nn.MaxPool2d(2)] if pool_after_each else []
            channels, rows, cols = filters, rows - size + 1, cols - size + 1
            rows, cols = (rows // 2, cols // 2) if pool_after_each else (rows, cols)
        if not pool_after_each:
            layers.append(nn.MaxPool2d(2))
            rows, cols = rows // 2, cols // 2
        (units,) = config.hidden_units
        layers += [*_dropout(config.conv_dropout), nn.Flatten(), nn.Linear(channels * rows * cols, units)]
        layers += [activation(), *_dropout(config.dropout), nn.Linear(units, NUM_CLASSES)]
    network = nn.Sequential(*layers)
    _initialize(network, config)
    return network


def _dropout(rate: float) -> list[nn.Module]:
    return [nn.Dropout(rate)] if rate else []


def _initialize(network: nn.Sequential, config: Config) -> None:
    weighted = [layer for layer in network if isinstance(layer, nn.Linear | nn.Conv2d)]
    for i, layer in enumerate(weighted):
        activation = "linear" if i == len(weighted) - 1 else config.activation
        name = config.kernel_initializer
        _INITIALIZERS[initializers.default_initializer(activation) if name == "auto" else name](layer.weight)
        nn.init.zeros_(layer.bias)


class PyTorchContender:
    """An eager PyTorch loop over the batches our pipeline would give, in the same order."""

    def __init__(self, config: Config, splits: Splits, total_steps: int) -> None:
        if config.loss != "cross_entropy" or config.weight_decay:
            raise MnistTfError("the pytorch contender trains with cross_entropy loss and no weight decay only")
        dtype = build.compute_dtype(config)
        if dtype not in _AUTOCAST:
            raise MnistTfError(f"the pytorch contender computes in float32 or bfloat16 on the CPU, not {dtype}")
        torch.set_num_threads(len(os.sched_getaffinity(0)))  # every core this process may use, as our TF does
        torch.manual_seed(config.seed)
        self.config, self.autocast = config, _AUTOCAST[dtype]
        self.model = model(config, splits.image_shape)
        self.optimizer = _OPTIMIZERS[config.optimizer](list(self.model.parameters()), 1.0, config)
        rates = _learning_rates(config, total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: rates[step])
        self.loss = nn.CrossEntropyLoss()
        self.train_images, self.train_labels = _tensors(splits.train.images, splits.train.labels)
        self.test_images, self.test_labels = _tensors(splits.test.images, splits.test.labels)
        self.steps_per_epoch = pipeline.steps_per_epoch(splits.train, config.batch_size)
        self.step, self.order = 0, np.empty(0)

    def train(self, steps: int) -> float:
        start = time.perf_counter()
        self.model.train()
        for _ in range(steps):
            images, labels = self._batch()
            with torch.autocast("cpu", dtype=self.autocast, enabled=self.autocast is not None):
                loss = self.loss(self.model(images).float(), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
        return time.perf_counter() - start

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, step = divmod(self.step, self.steps_per_epoch)
        if step == 0:
            self.order = pipeline.epoch_order(len(self.train_labels), self.config.batch_size, self.config.seed, epoch)
        self.step += 1
        indices = torch.from_numpy(self.order[step])
        return self.train_images[indices], self.train_labels[indices]

    def evaluate(self) -> tuple[float, float]:
        start = time.perf_counter()
        self.model.eval()
        correct = 0
        with torch.no_grad(), torch.autocast("cpu", dtype=self.autocast, enabled=self.autocast is not None):
            for images, labels in zip(
                self.test_images.split(self.config.eval_batch_size),
                self.test_labels.split(self.config.eval_batch_size),
                strict=True,
            ):
                correct += int((self.model(images).argmax(dim=1) == labels).sum())
        return correct / len(self.test_labels), time.perf_counter() - start


def _learning_rates(config: Config, total_steps: int) -> list[float]:
    """The learning rate of each step, from our schedule (the optimizer's base rate is 1)."""
    schedule = optimizers.learning_rate(config.lr_schedule, config.learning_rate, total_steps)
    if not callable(schedule):
        return [schedule] * (total_steps + 1)
    return [float(schedule(step)) for step in range(total_steps + 1)]


def _tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as our pipeline normalizes them, channels first as torch's convolutions want them."""
    normalized = pipeline.normalize_images(images).numpy()
    return torch.from_numpy(normalized).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels.astype(np.int64))
