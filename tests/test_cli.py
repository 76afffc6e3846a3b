"""scripts/train.py and recipes.py as users run them: their output, exit codes and files (in this process, but for
the one test of a new process's quiet stderr)."""

import ast
import gzip
import json
import os
import shutil
import subprocess

import pytest
from conftest import REPO, TRAIN
from script_runs import run_script


def run_train(*args, env=None, cwd=REPO):
    return run_script("train", *args, env=env, cwd=cwd)


@pytest.mark.slow  # a new Python process, as a user's shell starts it
def test_trains_with_quiet_logs_and_writes_results(idx_dir, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}  # a fresh shell
    process = subprocess.run(
        [
            *TRAIN,
            "--model=lenet",
            f"--data_dir={idx_dir}",
            f"--model_dir={tmp_path / 'run'}",
            f"--export_dir={tmp_path / 'export'}",
            "--epochs=4",  # confident enough that its int8 LiteRT file passes verification (3: 99.33% of is_digit)
            "--noaugment",  # the generated digits are random patterns, not shapes
            "--batch_size=50",
            "--filters=8,16",
            "--hidden_units=32",
            "--validation_size=100",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=env,
    )
    assert process.returncode == 0, process.stderr
    assert process.stderr == ""  # no TensorFlow C++ chatter, no warnings
    # conv1 8*25+8, conv2 16*8*25+16, dense1 (4*4*16)*32+32, logits 32*10+10
    lines = process.stdout.splitlines()
    assert lines[0] == "drawing 82 captured digits and the not-digit images from --seed=42 ..."  # seconds, said
    assert lines[1] == f"mnist_tf: lenet (ours layers) on mnist from idx:{idx_dir}"
    assert 'Model: "lenet"' in process.stdout and "Trainable params: 11,978" in process.stdout
    assert sum(line.startswith("epoch ") for line in lines) == 4
    assert any(line.startswith("test  loss") for line in lines)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["epochs"] == 4 and results["export_dir"] == str(tmp_path / "export" / "lenet" / "1")
    assert (tmp_path / "export" / "lenet" / "1" / "saved_model.pb").exists()
    assert f"LiteRT: {tmp_path / 'export' / 'litert' / 'lenet' / '1'} (float32, dynamic_range, int8)" in lines


@pytest.mark.slow  # trains
def test_bazel_run_reads_and_writes_relative_paths_where_it_was_started(idx_dir, tmp_path):
    """`bazel run` starts a script in its runfiles and says where the user was in $BUILD_WORKING_DIRECTORY."""
    (tmp_path / "data").symlink_to(idx_dir)
    (tmp_path / "runfiles").mkdir()
    process = run_train(
        "--model=mlp",
        "--hidden_units=16",
        "--data_dir=data",
        "--model_dir=run",
        "--epochs=1",
        "--validation_size=100",
        "--nolitert",
        env={"BUILD_WORKING_DIRECTORY": str(tmp_path)},
        cwd=tmp_path / "runfiles",
    )
    assert process.returncode == 0, process.stderr
    assert (tmp_path / "run" / "results.json").exists() and (tmp_path / "saved_models" / "mlp" / "1").is_dir()


@pytest.fixture(scope="module")
def broken_data(idx_dir, tmp_path_factory):
    """Copies of the generated IDX folder, each broken one way, by name (as `--data_dir=BROKEN:name`)."""
    root = tmp_path_factory.mktemp("broken")
    images, labels = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"

    def broken(name, file, damage):
        folder = root / name
        shutil.copytree(idx_dir, folder)
        (folder / file).write_bytes(damage((folder / file).read_bytes()))
        return folder

    return {
        "truncated": broken("truncated", images, lambda raw: gzip.compress(gzip.decompress(raw)[:-100])),
        "cut_gzip": broken("cut_gzip", images, lambda raw: raw[: len(raw) // 2]),
        "garbage": broken("garbage", labels, lambda raw: b"\x1f\x8b not really gzip"),
        "labels_for_images": broken("labels_for_images", labels, lambda raw: (idx_dir / images).read_bytes()),
        "count_mismatch": broken("count_mismatch", labels, lambda raw: _idx_labels(gzip.decompress(raw)[:-5])),
    }


def _idx_labels(raw):
    """An IDX label file of the labels in `raw` (an IDX label file whose tail was cut), with a matching header."""
    labels = raw[8:]
    return gzip.compress(b"\x00\x00\x08\x01" + len(labels).to_bytes(4, "big") + labels)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch_size=0"], "error: flag --batch_size=0: 0 is not a positive integer (see --helpshort)"),
        (["--batch_size=-5"], "error: flag --batch_size=-5: -5 is not a positive integer"),
        (["--epochs=two"], "error: flag --epochs=two: invalid literal for int() with base 10: 'two'"),
        (["--model=resnet"], "error: flag --model=resnet: value should be one of <lenet|mlp|cnn|bncnn>"),
        (["--recipe=lecun98"], "error: flag --recipe=lecun98: value should be one of <hat_mlp|keras_mlp|mxnet_mlp|"),
        (["--loss=hinge"], "error: flag --loss=hinge: value should be one of <cross_entropy|logcosh|mse>"),
        (["--dataset=digits", "IDX"], "error: --dataset=digits --source=auto --data_dir: the digits ship with"),
        (
            ["--early_stopping_patience=3", "--validation_size=0", "IDX"],
            "error: --early_stopping_patience needs a validation split (--validation_size above 0)",
        ),
        (["--optimizer=lamb"], "error: flag --optimizer=lamb: value should be one of <sgd|momentum|nesterov|adam"),
        (["--nan_policy=ignore"], "error: flag --nan_policy=ignore: value should be one of <stop|skip>"),
        (["--learning_rate=-1"], "error: flag --learning_rate=-1: -1.0 is not a non-negative number"),
        (["--no_such_flag"], "error: Unknown command line flag 'no_such_flag'"),
        (["IDX", "extra"], "error: unexpected arguments: extra (see --helpshort)"),
        (["--hidden_units=a,3"], "--hidden_units takes comma-separated positive integers"),
        (["--data_dir=/nonexistent"], "error: /nonexistent: missing train-images-idx3-ubyte.gz"),
        (["--data_dir=BROKEN:truncated"], "train-images-idx3-ubyte.gz: truncated: IDX header says [1200, 28, 28]"),
        (["--data_dir=BROKEN:cut_gzip"], "train-images-idx3-ubyte.gz: unreadable or corrupt (Compressed file ended"),
        (["--data_dir=BROKEN:garbage"], "train-labels-idx1-ubyte.gz: unreadable or corrupt"),
        (["--data_dir=BROKEN:labels_for_images"], "not an IDX label file (magic number 2051, expected 2049)"),
        (["--data_dir=BROKEN:count_mismatch"], "error: BROKEN:count_mismatch: train split has 1,200 images but 1,195"),
        (["--validation_size=2000", "IDX"], "error: --validation_size=2,000 leaves no training data"),
        (["--model=mlp", "--filters=3,3", "IDX"], "error: --filters applies to lenet, cnn and bncnn only"),
        (["--log_every_steps=-1"], "flag --log_every_steps=-1: -1 is not"),
        (["--histograms=weights,activations", "IDX"], "error: --histograms='activations' is not one of: weights"),
        (["--profile_steps=a,3"], "--profile_steps takes comma-separated positive integers"),
        (["--profile_steps=5", "IDX"], "error: --profile_steps is FIRST,LAST global steps with 1 <= FIRST <= LAST"),
        (["--profile_steps=9,3", "IDX"], "error: --profile_steps is FIRST,LAST global steps"),
        # 1,000 training images and 75 captured (--captures) in batches of 128: 8 steps per epoch, 64 in 8 epochs.
        (
            ["--profile_steps=50,65", "--validation_size=200", "--epochs=8", "--batch_size=128", "IDX"],
            "error: --profile_steps=65 is past the run's last step, 64",
        ),
        (["--num_gpus=1", "IDX"], "error: --num_gpus applies to --strategy=one_device or mirrored"),
        (
            ["--model_dir=/etc/hostname", "--validation_size=200", "IDX"],
            "error: cannot create --model_dir /etc/hostname: File exists",
        ),
    ],
)
def test_bad_input_is_one_clear_line(idx_dir, broken_data, tmp_path, args, message):
    def real(text):
        for name, folder in broken_data.items():
            text = text.replace(f"BROKEN:{name}", str(folder))
        return text.replace("IDX", f"--data_dir={idx_dir}") if text == "IDX" else text

    args, message = [real(arg) for arg in args], real(message)
    model_dir = [] if any(arg.startswith("--model_dir") for arg in args) else [f"--model_dir={tmp_path}"]
    process = run_train(*args, *model_dir)
    assert process.returncode in (1, 2)
    assert message in process.stderr
    assert len(process.stderr.strip().splitlines()) == 1, process.stderr


@pytest.mark.slow  # asks tfds for MNIST
def test_no_network_and_no_data_fails_fast_with_the_fix(tmp_path):
    """With tfds's cache empty: either tfds can download (a networked machine) or we fail fast and say why."""
    process = run_train(
        f"--tfds_data_dir={tmp_path}", "--epochs=1", f"--model_dir={tmp_path / 'run'}", env={"MNIST_TF_DATA_DIR": ""}
    )
    if process.returncode == 0:
        pytest.skip("this machine has network: tfds downloaded MNIST")
    assert "cannot be downloaded (no network): pass --data_dir=DIR" in process.stderr
    assert "Traceback" not in process.stderr


@pytest.mark.slow  # a new Python process whose reader goes away, as `| head` does
def test_help_into_a_closed_pipe_stops_quietly():
    process = subprocess.Popen(
        [*TRAIN, "--helpshort"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    process.stdout.close()  # gone before the help is written
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0 and b"Traceback" not in stderr and b"BrokenPipe" not in stderr, stderr


def test_helpshort_lists_the_flags():
    process = run_train("--helpshort")
    assert process.returncode == 0  # asked for: no failure
    for flag in (
        "--model",
        "--dataset",
        "--data_dir",
        "--model_dir",
        "--export_dir",
        "--epochs",
        "--batch_size",
        "--optimizer",
        "--learning_rate",
        "--seed",
        "--validation_size",
        "--recipe",
        "--loss",
        "--early_stopping_patience",
        "--kernel_initializer",
        "--conv_dropout",
        "--layers",
        "--log_every_steps",
        "--histograms",
        "--profile_steps",
    ):
        assert f"  {flag}:" in process.stdout, flag


@pytest.mark.slow  # trains
def test_recipe_flag_with_explicit_flags_overriding_it(idx_dir, tmp_path):
    process = run_train(
        "--recipe=keras_mlp",
        f"--data_dir={idx_dir}",
        f"--model_dir={tmp_path / 'run'}",
        f"--export_dir={tmp_path / 'export'}",
        "--epochs=1",
        "--batch_size=50",
        "--validation_size=200",
        "--nolitert",
    )
    assert process.returncode == 0, process.stderr
    drawing, header = process.stdout.splitlines()[:2]  # the captures' seconds are said before the header
    assert drawing.startswith("drawing ") and drawing.endswith(" captured digits from --seed=42 ...")
    assert header.endswith("· recipe keras_mlp")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    flags = results["flags"]
    # Given on the command line: theirs. Not given: the recipe's, not the project's defaults.
    assert (flags["epochs"], flags["batch_size"], flags["validation_size"]) == (1, 50, 200)
    assert (flags["hidden_units"], flags["dropout"], flags["kernel_initializer"]) == ([800], 0.5, "uniform")
    assert (flags["optimizer"], flags["learning_rate"], flags["lr_schedule"]) == ("sgd", 0.01, "constant")
    assert results["recipe"] == flags["recipe"] == "keras_mlp"
    assert results["export_dir"] == str(tmp_path / "export" / "keras_mlp" / "1")  # served under the recipe's name


@pytest.mark.slow  # trains
def test_recipes_script_tabulates_reported_against_measured(idx_dir, tmp_path):
    process = run_script(
        "recipes",
        "--recipes=mxnet_mlp,digits_cnn",
        "--epochs=1",
        f"--data_dir={idx_dir}",
        f"--runs_dir={tmp_path / 'runs'}",
        f"--output={tmp_path / 'recipes.md'}",
    )
    assert process.returncode == 0, process.stderr
    table = (tmp_path / "recipes.md").read_text()
    assert table.strip() in process.stdout
    rows = {line.split("|")[1].strip(): line.split("|") for line in table.splitlines() if line.startswith("| `")}
    assert list(rows) == ["`mxnet_mlp`", "`digits_cnn`"]
    for name, cells in rows.items():
        results = json.loads((tmp_path / "runs" / name.strip("`") / "results.json").read_text())
        assert cells[5].strip().startswith(f"{results['test_accuracy']:.2%}")
        assert cells[6].strip() == "1"  # --epochs=1 overrides each recipe's count, and the table says so
    assert rows["`mxnet_mlp`"][4].strip() == "96.0%" and rows["`digits_cnn`"][4].strip() == "no figure"
    digits = json.loads((tmp_path / "runs" / "digits_cnn" / "results.json").read_text())
    assert digits["data_source"] == "sklearn:digits"  # --data_dir went to the MNIST recipes only


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "error: pass --all or --recipes=NAMES (one of them)"),
        (["--all", "--recipes=hat_mlp"], "error: pass --all or --recipes=NAMES (one of them)"),
        (["--recipes=hat_mlp,lecun98"], "--recipes takes a comma-separated list of: hat_mlp, keras_mlp"),
    ],
)
def test_recipes_script_bad_flags_are_one_line(args, message):
    process = run_script("recipes", *args)
    assert process.returncode == 2
    assert message in process.stderr and len(process.stderr.strip().splitlines()) == 1, process.stderr


@pytest.mark.parametrize("script", sorted((REPO / "scripts").glob("*.py")), ids=lambda path: path.name)
def test_a_scripts_help_shows_its_docstring_as_written(script):
    """absl's --help formats a script's docstring with % (the script's name for each specifier): "95% acceptance"
    came out as "95'scripts/evaluate.py'cceptance"."""
    assert "%" not in (ast.get_docstring(ast.parse(script.read_text())) or "")
