r"""The first thing to run on new hardware: do this project's accelerator paths work here, and how fast?

python scripts/accelerator_check.py --data_dir=/path/to/idx/files     # sized for 8 minutes on one GPU

Trains the default LeNet (in --dtype, default auto: the hardware's fastest) under the default strategy and under
mirrored over all GPUs, each with XLA on and off, and checks that each reaches --expected_accuracy and that
mirrored matches default; runs the benchmark's --quick race in the same --dtype; re-evaluates the exported
SavedModel with scripts/evaluate.py. Each step is the project's own script in its own process, as a user runs it.
Prints one JSON summary (also written to --output) and exits 1 if a check failed. Without GPUs or a TPU it runs
the CPU part and lists the checks it skipped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common
import config_flags
import tensorflow as tf
from absl import flags

from mnist_tf import distribute
from mnist_tf.errors import MnistTfError
from mnist_tf.files import write_json_atomic
from mnist_tf.reporting import machine

config_flags.define_config_flags((*config_flags.DATA_FLAGS, "dtype", "epochs"))
flags.adopt_module_key_flags(config_flags)
flags.DEFINE_float("expected_accuracy", 0.99, "Test accuracy every training run must reach (the default LeNet's).")
flags.DEFINE_list("benchmark_models", [], "Models and recipes of the --quick race (default: the benchmark's).")
flags.DEFINE_string(
    "work_dir", "runs/accelerator_check", "Where the runs, exports and reports go (each run starts fresh)."
)
flags.DEFINE_string("output", "runs/accelerator_check.json", "Where the JSON summary goes.")
FLAGS = flags.FLAGS

SCRIPTS = Path(__file__).resolve().parent
# Mirrored and default sum the same gradients in another order: over a whole run the weights drift apart by more
# than rounding, but the model they reach is the same within these bounds.
MATCH_ACCURACY = 0.003
MATCH_LOSS = 0.1  # relative


@dataclasses.dataclass
class Check:
    name: str
    status: str  # passed, failed or skipped
    detail: str
    seconds: float = 0.0


def main(argv: list[str]) -> None:
    work = Path(FLAGS.work_dir)
    gpus = [details(gpu) for gpu in tf.config.list_physical_devices("GPU")]
    tpu = tpu_address()
    checks: list[Check] = []
    runs: dict[str, dict[str, Any]] = {}
    for strategy, xla in training_runs(bool(gpus), tpu):
        name = f"train {strategy}, XLA {xla}"
        check, runs[name] = train(name, work / name.replace(", ", "-").replace(" ", "_"), strategy, xla)
        checks.append(check)
    for xla in ("on", "off"):
        if f"train mirrored, XLA {xla}" in runs:
            checks.append(match(runs[f"train mirrored, XLA {xla}"], runs[f"train default, XLA {xla}"], xla))
    checks.append(reevaluate(work, next(iter(runs.values()))))
    checks.append(quick_race(work))
    checks += skipped(bool(gpus), tpu)
    summary = {
        "passed": all(c.status != "failed" for c in checks),
        "machine": machine.machine(),
        "gpus": gpus,
        "tpu": tpu,
        "precision": next((r["precision"] for r in runs.values() if r), None),
        "checks": [dataclasses.asdict(c) for c in checks],
    }
    write_json_atomic(FLAGS.output, summary)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    if not summary["passed"]:
        failed = ", ".join(c.name for c in checks if c.status == "failed")
        raise MnistTfError(f"accelerator check failed: {failed} (details above and in {FLAGS.output})")


def training_runs(gpus: bool, tpu: str | None) -> list[tuple[str, str]]:
    """(strategy, XLA) of each training run: both strategies with XLA on and off on GPUs; the TPU; the CPU's part."""
    if gpus:
        return [(strategy, xla) for strategy in ("default", "mirrored") for xla in ("on", "off")]
    if tpu:
        return [("tpu", "on")]
    return [("default", "off"), ("mirrored", "off")]


def skipped(gpus: bool, tpu: str | None) -> list[Check]:
    if gpus:
        return []
    why = "a TPU, no GPU" if tpu else "no GPU or TPU"
    names = ["mirrored over GPUs", "XLA on", "float16 on tensor cores (--dtype=auto)"]
    return [Check(name, "skipped", why) for name in names]


def train(name: str, model_dir: Path, strategy: str, xla: str) -> tuple[Check, dict[str, Any]]:
    """scripts/train.py with the default model and settings: its results.json, and whether it learned enough."""
    args = [f"--strategy={strategy}", f"--jit_compile={xla}", f"--model_dir={model_dir}", "--fresh"]
    args += [
        f"--export_dir={model_dir / 'export'}",
        *data_flags(),
        f"--epochs={FLAGS.epochs}",
        f"--dtype={FLAGS.dtype}",
    ]
    args.append("--nolitert")  # LiteRT conversion runs on the CPU whatever trained the model: not checked here
    check, ok = script(name, "train.py", args)
    if not ok:
        return check, {}
    results = json.loads((model_dir / "results.json").read_text())
    accuracy = results["test_accuracy"]
    check.status = "passed" if accuracy >= FLAGS.expected_accuracy else "failed"
    check.detail = (
        f"test accuracy {accuracy:.2%} (expected {FLAGS.expected_accuracy:.2%}) · {results['images_per_second']:,.0f} "
        f"images/s · {results['replicas']} replica(s) · {distribute.DTYPE_POLICIES[results['precision']['dtype']]} "
        f"({results['precision']['reason']})"
    )
    return check, results


def match(mirrored: dict[str, Any], default: dict[str, Any], xla: str) -> Check:
    """Mirrored trains the model default trains: the same test accuracy and loss, within summation order."""
    name = f"mirrored matches default, XLA {xla}"
    if not (mirrored and default):
        return Check(name, "failed", "a run failed")
    accuracy_gap = abs(mirrored["test_accuracy"] - default["test_accuracy"])
    loss_gap = abs(mirrored["test_loss"] - default["test_loss"]) / default["test_loss"]
    ok = accuracy_gap <= MATCH_ACCURACY and loss_gap <= MATCH_LOSS
    detail = f"test accuracy {accuracy_gap:.2%} apart (at most {MATCH_ACCURACY:.1%}), loss {loss_gap:.1%} apart"
    return Check(name, "passed" if ok else "failed", f"{detail} (at most {MATCH_LOSS:.0%})")


def reevaluate(work: Path, results: dict[str, Any] | None) -> Check:
    """scripts/evaluate.py on the first run's SavedModel gives the accuracy training reported."""
    name = "SavedModel re-evaluated"
    if not results:
        return Check(name, "failed", "the first training run failed: nothing exported")
    report_file = work / "evaluate.json"
    args = [f"--saved_model={results['export_dir']}", f"--report={report_file}", *data_flags()]
    check, ok = script(name, "evaluate.py", args)
    if ok:
        accuracy = json.loads(report_file.read_text())["accuracy"]
        same = abs(accuracy - results["test_accuracy"]) < 1e-6
        check.status = "passed" if same else "failed"
        check.detail = f"{accuracy:.2%} served, {results['test_accuracy']:.2%} when trained"
    return check


def quick_race(work: Path) -> Check:
    """scripts/benchmark.py --quick: every contender trains; ours' speed against Keras model.fit."""
    output = work / "benchmark.json"
    args = ["--quick", f"--output={output}", *data_flags(), f"--dtype={FLAGS.dtype}"]
    if FLAGS.benchmark_models:
        args.append(f"--models={','.join(FLAGS.benchmark_models)}")
    check, ok = script("benchmark --quick", "benchmark.py", args)
    if ok:
        races = json.loads(output.read_text())["models"]
        check.status = "passed"
        check.detail = " · ".join(
            f"{name}: ours {race['contenders']['ours']['train_images_per_second']:,.0f} images/s, "
            f"{race['contenders']['ours']['vs_keras_fit']['train_speed']:.2f}x keras_fit"
            for name, race in races.items()
        )
    return check


def script(name: str, file: str, args: list[str]) -> tuple[Check, bool]:
    """Runs scripts/<file> with live output; a failed Check with its error line if it fails."""
    print(f"== {name}: python scripts/{file} {' '.join(args)}", flush=True)
    start = time.perf_counter()
    process = subprocess.run(
        [sys.executable, str(SCRIPTS / file), *args], stdout=None, stderr=subprocess.PIPE, text=True
    )
    seconds = round(time.perf_counter() - start, 1)
    if process.returncode:
        error = process.stderr.strip().splitlines()[-1:] or [f"exit code {process.returncode}"]
        return Check(name, "failed", error[0], seconds), False
    return Check(name, "passed", "", seconds), True


def data_flags() -> list[str]:
    return [f"--{name}={FLAGS[name].value}" for name in config_flags.DATA_FLAGS if FLAGS[name].value is not None]


def details(gpu: tf.config.PhysicalDevice) -> dict[str, Any]:
    info = tf.config.experimental.get_device_details(gpu)
    return {"name": info.get("device_name", gpu.name), "compute_capability": info.get("compute_capability")}


def tpu_address() -> str | None:
    try:
        return distribute.find_tpu()
    except MnistTfError:
        return None


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    common.run(main)
