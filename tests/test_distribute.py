"""Strategies and mixed precision on this CPU: every strategy trains the same model, and fails clearly when it can't.

conftest.py splits the CPU into two logical devices, so `mirrored` runs two replicas in this process;
multi-worker runs two real worker processes on 127.0.0.1.
"""

import dataclasses
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, TRAIN, checkpoint_weights, finish_workers, free_port, quiet_run, start_workers

from mnist_tf import distribute, run
from mnist_tf.config import Config
from mnist_tf.data import pipeline, sources
from mnist_tf.errors import MnistTfError
from mnist_tf.export import classifier
from mnist_tf.training import build
from mnist_tf.training.trainer import Trainer


def small_lenet(config, name, **changes):
    """A LeNet small enough to train in seconds; dropout stays on (its masks must not depend on the strategy)."""
    changes = {"export_dir": None, **changes}
    return dataclasses.replace(
        config, model="lenet", hidden_units=(32,), filters=(4, 8), model_dir=f"{config.model_dir}-{name}", **changes
    )


def epoch_losses(output):
    return [float(line.split("loss ")[1].split()[0]) for line in output.splitlines() if line.startswith("epoch ")]


@pytest.mark.slow
def test_mirrored_over_two_devices_matches_the_default_strategy(tiny_config):
    single, single_output = quiet_run(small_lenet(tiny_config, "default"))
    mirrored, mirrored_output = quiet_run(small_lenet(tiny_config, "mirrored", strategy="mirrored"))
    assert mirrored["replicas"] == 2
    assert "strategy: mirrored (2 replicas) · batch 50 (25 per replica)" in mirrored_output
    np.testing.assert_allclose(epoch_losses(mirrored_output), epoch_losses(single_output), rtol=1e-5)
    assert mirrored["test_loss"] == pytest.approx(single["test_loss"], rel=1e-5)
    expected = checkpoint_weights(single["flags"]["model_dir"])
    actual = checkpoint_weights(mirrored["flags"]["model_dir"])
    assert actual.keys() == expected.keys() and len(actual) == 9
    for name, value in expected.items():
        np.testing.assert_allclose(actual[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_evaluation_counts_every_example_once_when_batches_do_not_divide_it(tiny_config):
    # 300 test images in batches of 128: the last batch is padded with 84 blanks, split over 2 replicas.
    config = dataclasses.replace(tiny_config, strategy="mirrored", eval_batch_size=128, epochs=1, export_dir=None)
    results, _ = quiet_run(config)
    test = sources.load(data_dir=tiny_config.data_dir).test
    model = classifier.load(tiny_config.model_dir).model  # the tested weights, as the export gets them
    logits = model(pipeline.normalize_images(test.images), training=False)
    assert results["test_accuracy"] == pytest.approx(np.mean(logits.numpy().argmax(1) == test.labels), abs=1e-6)
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(test.labels, logits).numpy()
    assert results["test_loss"] == pytest.approx(cross_entropy.mean(), rel=1e-3)


def test_confusion_matrix_counts_each_example_once_across_replicas(idx_dir):
    strategy = distribute.make_strategy("mirrored")
    config = Config(model="mlp", hidden_units=(16,)).resolve()
    with strategy.scope():
        model = build.model(config, (28, 28, 1))
        optimizer = build.optimizer(config, total_steps=1)
    trainer = Trainer(model, optimizer, strategy, global_batch_size=50)
    test = sources.load(data_dir=str(idx_dir)).test  # 300 images: batches of 128 end in 84 padding blanks
    result = trainer.evaluate(pipeline.eval_dataset(test, 128))
    predicted = model(pipeline.normalize_images(test.images)).numpy().argmax(axis=1)
    expected = np.zeros((10, 10), np.int64)
    np.add.at(expected, (test.labels, predicted), 1)
    np.testing.assert_array_equal(result.confusion, expected)
    assert result.accuracy == pytest.approx(np.trace(expected) / 300)


@pytest.mark.parametrize("flag", ["batch_size", "eval_batch_size"])
def test_batch_sizes_must_divide_over_the_replicas(tiny_config, flag):
    config = dataclasses.replace(tiny_config, strategy="mirrored", **{flag: 51})
    with pytest.raises(MnistTfError, match=rf"--{flag}=51 must be divisible by the number of replicas \(2\); try 50"):
        run.run(config)


@pytest.mark.slow  # trains for real
def test_steps_per_loop_gives_the_same_run_as_one_step_per_call(tiny_config):
    one, _ = quiet_run(small_lenet(tiny_config, "one"))
    seven, output = quiet_run(small_lenet(tiny_config, "seven", steps_per_loop=7))  # 20 steps/epoch: 7, 7, 6
    assert "20 steps/epoch · 7 steps per call" in output
    assert seven["weights_sha256"] == one["weights_sha256"]
    assert seven["test_loss"] == one["test_loss"]


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "auto"])
def test_mixed_precision_trains_and_exports_a_float32_serving_model(tiny_config, tmp_path, dtype):
    config = small_lenet(tiny_config, dtype, dtype=dtype, epochs=3, export_dir=str(tmp_path / "export"))
    results, output = quiet_run(config)
    assert distribute.DTYPE_POLICIES[results["precision"]["dtype"]] in output
    losses = epoch_losses(output)
    assert losses[-1] < losses[0] - 0.2, losses
    served = tf.saved_model.load(results["export_dir"]).signatures["serving_default"]
    assert served.structured_outputs["probabilities"].dtype == tf.float32
    test = sources.load(data_dir=tiny_config.data_dir).test
    outputs = served(images=tf.constant(test.images[..., 0]))
    np.testing.assert_allclose(outputs["probabilities"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    served_accuracy = np.mean(outputs["classes"].numpy() == test.labels)
    assert served_accuracy == pytest.approx(results["test_accuracy"], abs=1e-6)
    assert served_accuracy > 0.3  # ten classes: chance is 0.1


@pytest.mark.parametrize(
    ("tpu", "gpus", "cpu", "expected"),
    [
        (True, [], set(), "bfloat16"),
        (False, [(8, 0), (8, 0)], set(), "float16"),
        (False, [(7, 0)], {"avx512_bf16"}, "float16"),  # the GPU computes: its features decide
        (False, [(6, 1)], set(), "float32"),  # Pascal: no tensor cores
        (False, [(8, 0), None], set(), "float32"),  # a GPU that does not say: the safe choice
        (False, [], {"avx2", "avx512f", "avx512_bf16"}, "bfloat16"),
        (False, [], {"avx2", "amx_bf16", "amx_tile"}, "bfloat16"),
        (False, [], {"avx2", "avx512f"}, "float32"),  # AVX-512 without bfloat16 emulates it: slower
        (False, [], set(), "float32"),  # not Linux: no flags to go by
    ],
)
def test_auto_precision_is_the_hardware_s_fastest(tpu, gpus, cpu, expected):
    precision = distribute.fastest_dtype(tpu, gpus, cpu)
    assert precision.dtype == expected and precision.reason.startswith("auto: ")


def test_auto_precision_on_this_machine_follows_its_cpu_flags_and_an_explicit_dtype_wins():
    strategy = distribute.make_strategy("default")
    assert distribute.choose_dtype("auto", strategy) == distribute.fastest_dtype(False, [], distribute.cpu_flags())
    assert distribute.choose_dtype("float32", strategy) == distribute.Precision("float32", "--dtype=float32")


def test_a_run_says_and_records_what_auto_chose(tiny_config):
    results, output = quiet_run(dataclasses.replace(tiny_config, dtype="auto", epochs=1, export_dir=None))
    expected = distribute.fastest_dtype(False, [], distribute.cpu_flags())
    assert results["precision"] == {"dtype": expected.dtype, "reason": expected.reason}
    assert results["flags"]["dtype"] == expected.dtype  # config.json too: a resume on this CPU sees no change
    assert f"{distribute.DTYPE_POLICIES[expected.dtype]} ({expected.reason})" in output


def test_gpu_counts_are_checked_and_one_device_can_pin_the_cpu():
    with pytest.raises(MnistTfError, match=r"--num_gpus=1, but this machine has 0 GPU\(s\)"):
        distribute.make_strategy("mirrored", num_gpus=1)
    strategy = distribute.make_strategy("one_device", num_gpus=0)
    assert distribute.describe(strategy) == "one_device (1 replica)"
    assert strategy.extended.worker_devices == ("/job:localhost/replica:0/task:0/device:CPU:0",)


@pytest.mark.slow
def test_tpu_strategy_without_a_tpu_fails_fast_with_one_line(idx_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("COLAB_TPU_ADDR", "TPU_NAME")}
    start = time.monotonic()
    process = subprocess.run(
        [*TRAIN, "--strategy=tpu", f"--data_dir={idx_dir}", f"--model_dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
    )
    assert time.monotonic() - start < 60
    assert process.returncode == 1
    assert process.stderr.strip().startswith("error: --strategy=tpu: no TPU found on this machine")
    assert len(process.stderr.strip().splitlines()) == 1


def test_unreachable_tpu_address_is_reported():
    address = f"grpc://127.0.0.1:{free_port()}"
    with pytest.raises(MnistTfError, match=f"--tpu={address}: cannot reach it"):
        distribute.make_strategy("tpu", tpu=address)


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, r"--strategy=multi_worker needs \$TF_CONFIG"),
        ("{not json", r"\$TF_CONFIG is not valid \(JSONDecodeError"),
        ('{"cluster": {"worker": ["127.0.0.1:1"]}}', r"\$TF_CONFIG is not valid \(KeyError: 'task'\)"),
        (
            '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
            r"task index 3 is not in cluster\['worker'\] \(1 tasks\)",
        ),
    ],
)
def test_bad_tf_config_is_one_line(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(MnistTfError, match=message):
        distribute.make_strategy("multi_worker")


@pytest.mark.slow
def test_two_worker_processes_train_in_sync_and_only_the_chief_writes(two_worker_run):
    root, (chief_output, worker_output) = two_worker_run
    model_dir, export_dir = root / "run", root / "saved_models"
    assert "multi_worker (2 replicas) · this is worker 0 of 2 tasks · batch 20 (10 per replica)" in chief_output
    assert "this is worker 1 of 2 tasks" in worker_output
    assert epoch_losses(chief_output) == epoch_losses(worker_output) and len(epoch_losses(chief_output)) == 4

    results = json.loads((model_dir / "results.json").read_text())
    assert results["replicas"] == 2
    assert f"weights sha256 {results['weights_sha256'][:12]}" in worker_output  # the workers end in sync
    assert sorted(p.name for p in (export_dir / "lenet").iterdir()) == ["1"]
    assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith("ckpt-200")
    assert all(len(list((model_dir / split).iterdir())) == 1 for split in ("train", "validation", "test"))
    assert len(list(model_dir.glob("events.out.*"))) == 1  # the chief's hparams, once
    # Its temporary outputs are gone (TensorFlow's autograph leaves the bytecode of its generated modules there).
    assert "not the chief" in worker_output and [p for p in (root / "tmp").iterdir() if p.name != "__pycache__"] == []
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "checkpoints", "config.json", *sorted(p.name for p in model_dir.glob("events.out.*")), "results.json", "test",
        "train", "validation",
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.long
def test_a_preempted_worker_makes_both_save_the_same_step_and_the_rerun_ends_in_the_same_weights(
    idx_dir, tmp_path, two_worker_run
):
    """SIGTERM reaches one worker (not the chief): PreemptionCheckpointHandler has both save at one step and exit."""
    model_dir, export_dir, scratch = tmp_path / "run", tmp_path / "saved_models", tmp_path / "tmp"
    scratch.mkdir()
    chief, worker = start_workers(idx_dir, model_dir, export_dir, scratch)
    for line in chief.stdout:
        if line.startswith("epoch 1/4"):
            break
    worker.send_signal(signal.SIGTERM)
    (_, chief_stderr), (_, worker_stderr) = finish_workers([chief, worker], expected_returncode=143)
    step = int(tf.train.latest_checkpoint(str(model_dir / "checkpoints")).rsplit("-", 1)[1])
    assert 50 < step < 200
    for stderr in (chief_stderr, worker_stderr):
        assert (
            stderr == f"preempted at step {step}, saved; to resume, run the same command with --model_dir={model_dir}\n"
        )

    outputs = finish_workers(start_workers(idx_dir, model_dir, export_dir, scratch))
    assert all(f"resuming from {model_dir}/checkpoints/ckpt-{step}" in stdout for stdout, _ in outputs)
    expected = json.loads((two_worker_run[0] / "run" / "results.json").read_text())
    assert json.loads((model_dir / "results.json").read_text())["weights_sha256"] == expected["weights_sha256"]
