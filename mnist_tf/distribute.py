"""Distribution strategies, the mixed-precision policy, and device-dependent choices (precision, XLA).

The training code is the same for every strategy: batch sizes are global, each replica gets its slice, and
`is_chief` says which process writes the run's outputs (checkpoints, logs, SavedModel). Strategies must be made
before any other TensorFlow work in the process (multi-worker and TPU configure the runtime).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import socket
from collections.abc import Callable, Collection, Sequence
from typing import Any
from urllib.parse import urlparse

import keras
import tensorflow as tf

from mnist_tf.errors import MnistTfError, first_line

# --dtype -> Keras dtype policy. Mixed policies keep float32 variables and compute in 16 bits.
DTYPE_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
# --dtype's choices: "auto" is the fastest of the others on the run's devices (`choose_dtype`).
DTYPES = ("auto", *DTYPE_POLICIES)
# CPU features (Linux /proc/cpuinfo names) that make bfloat16 matrix products native, hence fast; without them
# oneDNN emulates bfloat16 and runs slower than float32 (docs/performance.md has the measurements).
NATIVE_BFLOAT16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
TENSOR_CORES = (7, 0)  # the first GPU compute capability with float16 tensor cores (Volta)


@dataclasses.dataclass(frozen=True)
class Precision:
    """The compute dtype a run uses, and why (auto's reason, or the flag that set it)."""

    dtype: str
    reason: str


def choose_dtype(setting: str, strategy: tf.distribute.Strategy) -> Precision:
    """`--dtype`: as given, or for "auto" the fastest precision that keeps accuracy on `strategy`'s devices."""
    if setting != "auto":
        return Precision(setting, f"--dtype={setting}")
    devices = _compute_devices(strategy)
    gpus = [int(name.rsplit(":", 1)[1]) for name in devices if re.search(r"GPU:\d+$", name)]
    physical = tf.config.list_physical_devices("GPU")
    capabilities = [tf.config.experimental.get_device_details(physical[i]).get("compute_capability") for i in gpus]
    return fastest_dtype(any("TPU" in name for name in devices), capabilities, cpu_flags())


def fastest_dtype(tpu: bool, gpu_capabilities: Sequence[tuple[int, int] | None], cpu: Collection[str]) -> Precision:
    """bfloat16 on TPUs and on CPUs with native bfloat16, float16 on GPUs with tensor cores, else float32."""
    if tpu:
        return Precision("bfloat16", "auto: TPUs compute in bfloat16")
    if gpu_capabilities:
        known = [c for c in gpu_capabilities if c]
        if len(known) == len(gpu_capabilities) and min(known) >= TENSOR_CORES:
            return Precision(
                "float16", f"auto: GPUs with tensor cores (compute capability {'.'.join(map(str, min(known)))})"
            )
        return Precision("float32", "auto: GPUs without float16 tensor cores")
    native = sorted(NATIVE_BFLOAT16_CPU_FLAGS & set(cpu))
    if native:
        return Precision("bfloat16", f"auto: the CPU has native bfloat16 ({', '.join(native)})")
    return Precision("float32", "auto: the CPU has no native bfloat16 (no avx512_bf16 or amx_bf16)")


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them; none elsewhere (so auto picks float32 there)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            line = next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        return frozenset()
    return frozenset(line.partition(":")[2].split())


def _compute_devices(strategy: tf.distribute.Strategy) -> list[str]:
    """The devices the strategy's replicas compute on; for the default strategy, TensorFlow's own choice (its
    first GPU, else the CPU)."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return ["TPU"]
    try:
        return list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy has no device list
        gpus = tf.config.list_logical_devices("GPU")
        return [gpus[0].name] if gpus else ["CPU"]


def make_strategy(name: str, num_gpus: int | None = None, tpu: str = "") -> tf.distribute.Strategy:
    """The strategy `--strategy=name` asks for (see `STRATEGIES`); MnistTfError when this machine cannot give it."""
    return STRATEGIES[name](num_gpus, tpu)


def _default(num_gpus: int | None, tpu: str) -> tf.distribute.Strategy:
    """No distribution."""
    return tf.distribute.get_strategy()


def _one_device(num_gpus: int | None, tpu: str) -> tf.distribute.Strategy:
    """The first GPU; the CPU with none, or with num_gpus=0."""
    gpus = _local_gpus(num_gpus)
    return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")


def _mirrored(num_gpus: int | None, tpu: str) -> tf.distribute.Strategy:
    """The first `num_gpus` local GPUs (all by default); on a machine without GPUs, its logical CPU devices (one,
    unless split with `tf.config.set_logical_device_configuration`, as the tests do)."""
    gpus = _local_gpus(num_gpus)
    if gpus:
        return tf.distribute.MirroredStrategy(gpus)
    # CPU replicas share one memory, so summing on one device is all the all-reduce they need (TF's default,
    # collective ops, also collides when a process makes a second MirroredStrategy, as tests and benchmarks do).
    cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())


def distribute_dataset(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset) -> Any:
    """Splits each global batch of `dataset` into one slice per replica, in replica order.

    The data lives in memory, so sharding is by data (each worker keeps its slices of every batch), not by
    file; saying so up front spares TensorFlow's warning about trying files first.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def dtype_policy(dtype: str) -> keras.DTypePolicy:
    return keras.DTypePolicy(DTYPE_POLICIES[dtype])


def use_jit(setting: str) -> bool:
    """XLA for the forward/backward step: on for GPUs/TPUs; off on CPU, where its convolutions are much slower than
    TensorFlow's own oneDNN kernels (docs/performance.md)."""
    if setting != "auto":
        return setting == "on"
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the one process that writes checkpoints, logs and exports (always, unless multi-worker)."""
    return strategy.extended.should_checkpoint


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Returns once every worker has reached it: a one-number all-reduce (instant in a single process)."""
    strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)


def any_worker(strategy: tf.distribute.Strategy, flag: bool) -> bool:
    """True if `flag` is True in any worker: an all-reduce of one number, which every worker must call."""
    flags = strategy.run(lambda: tf.constant(1.0 if flag else 0.0))
    return bool(strategy.reduce(tf.distribute.ReduceOp.SUM, flags, axis=None) > 0)


def per_replica_batch_size(flag: str, global_batch_size: int, strategy: tf.distribute.Strategy) -> int:
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise MnistTfError(
            f"--{flag}={global_batch_size} must be divisible by the number of replicas ({replicas}); "
            f"try {max(replicas, global_batch_size // replicas * replicas)}"
        )
    return global_batch_size // replicas


def describe(strategy: tf.distribute.Strategy) -> str:
    """E.g. 'mirrored (2 replicas)' or 'multi_worker (4 replicas) · this is worker 1 of 2 tasks'."""
    names = (
        (tf.distribute.TPUStrategy, "tpu"),
        (tf.distribute.MultiWorkerMirroredStrategy, "multi_worker"),
        (tf.distribute.MirroredStrategy, "mirrored"),
        (tf.distribute.OneDeviceStrategy, "one_device"),
    )
    name = next((n for cls, n in names if isinstance(strategy, cls)), "default")
    replicas = strategy.num_replicas_in_sync
    text = f"{name} ({replicas} replica{'s' if replicas > 1 else ''})"
    if name == "multi_worker":
        resolver = strategy.cluster_resolver
        tasks = sum(len(addresses) for addresses in resolver.cluster_spec().as_dict().values())
        text += f" · this is {resolver.task_type} {resolver.task_id} of {tasks} tasks"
    return text


def _local_gpus(num_gpus: int | None) -> list[str]:
    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    if num_gpus is None:
        return gpus
    if num_gpus > len(gpus):
        raise MnistTfError(f"--num_gpus={num_gpus}, but this machine has {len(gpus)} GPU(s)")
    return gpus[:num_gpus]


def _multi_worker(num_gpus: int | None, tpu: str) -> tf.distribute.Strategy:
    """Every worker of the cluster in $TF_CONFIG, checked first so that a typo is one line, not a hang."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise MnistTfError(
            "--strategy=multi_worker needs $TF_CONFIG, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        tf_config = json.loads(raw)
        task_type, index = tf_config["task"]["type"], int(tf_config["task"]["index"])
        tasks = tf_config["cluster"][task_type]
    except (ValueError, KeyError, TypeError) as e:
        raise MnistTfError(f"$TF_CONFIG is not valid ({type(e).__name__}: {e}): {raw}") from None
    if not 0 <= index < len(tasks):
        raise MnistTfError(f"$TF_CONFIG: task index {index} is not in cluster[{task_type!r}] ({len(tasks)} tasks)")
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise MnistTfError(f"cannot start worker {task_type} {index} at {tasks[index]}: {first_line(e)}") from None


def _tpu(num_gpus: int | None, address: str) -> tf.distribute.Strategy:
    """A local or Colab TPU (`address` "") or the one at a grpc:// address; a clear error within seconds when
    there is no TPU to connect to."""
    address = address or find_tpu()
    if address.startswith("grpc://"):
        _require_reachable(address)
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        if address != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise MnistTfError(f"cannot use the TPU {address!r}: {first_line(e)}") from None


# --strategy -> (num_gpus, tpu) -> the strategy
STRATEGIES: dict[str, Callable[[int | None, str], tf.distribute.Strategy]] = {
    "default": _default,
    "one_device": _one_device,
    "mirrored": _mirrored,
    "multi_worker": _multi_worker,
    "tpu": _tpu,
}
# --jit_compile: auto is XLA on GPUs and TPUs only
JIT_SETTINGS = ("auto", "on", "off")


def find_tpu() -> str:
    """A TPU attached to this VM ('local'), Colab's (grpc address), or one named by $TPU_NAME."""
    if glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"):
        return "local"
    if os.environ.get("COLAB_TPU_ADDR"):
        return "grpc://" + os.environ["COLAB_TPU_ADDR"]
    if os.environ.get("TPU_NAME"):
        return os.environ["TPU_NAME"]
    raise MnistTfError(
        "--strategy=tpu: no TPU found on this machine (no /dev/accel*, $COLAB_TPU_ADDR or $TPU_NAME); "
        "on Colab choose a TPU runtime, elsewhere pass --tpu=NAME or --tpu=grpc://HOST:PORT"
    )


def _require_reachable(address: str) -> None:
    parsed = urlparse(address)
    try:
        socket.create_connection((parsed.hostname, parsed.port or 8470), timeout=5).close()
    except (OSError, ValueError) as e:
        raise MnistTfError(f"--tpu={address}: cannot reach it ({e})") from None
