r"""Trains as scripts/train.py does, on a Ray cluster: Ray Train's TensorflowTrainer starts --num_workers workers,
sets TF_CONFIG in each for MultiWorkerMirroredStrategy, and runs the project's own training function in every one.

pip install "ray[train]"                                      # this script's only extra dependency
python scripts/train_ray.py --num_workers=2 --model=lenet     # a local Ray cluster on this machine (127.0.0.1)
python scripts/train_ray.py --address=auto --num_workers=8 --model_dir=/shared/runs/lenet   # an existing cluster

Every flag of train.py works here (--strategy is multi_worker). The chief worker writes the run directory and the
export as train.py does. A worker that dies is restarted by Ray (--max_failures times), and the run resumes from
its last checkpoint; keep --model_dir (and --data_dir) on storage every machine of the cluster sees.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from pathlib import Path

import common
import config_flags
from absl import flags

from mnist_tf import run
from mnist_tf.config import Config
from mnist_tf.errors import MnistTfError, first_line
from mnist_tf.training import run_lock, run_state

config_flags.define_training_flags()
flags.adopt_module_key_flags(config_flags)
flags.DEFINE_integer("num_workers", 2, "Ray Train workers: the processes of one multi-worker run.", lower_bound=1)
flags.DEFINE_string("address", "", "An existing Ray cluster ('auto', HOST:PORT, ray://...); empty: start a local one.")
flags.DEFINE_integer("cpus_per_worker", 1, "CPUs Ray reserves for each worker.", lower_bound=1)
flags.DEFINE_bool("use_gpu", False, "Give each worker a GPU.")
flags.DEFINE_integer("max_failures", 3, "How many times Ray restarts the workers after one dies.", lower_bound=0)
FLAGS = flags.FLAGS

PATH_FIELDS = ("model_dir", "export_dir", "data_dir", "tfds_data_dir")


def main(argv: list[str]) -> None:
    if FLAGS["strategy"].present and FLAGS.strategy != "multi_worker":
        raise MnistTfError(
            f"train_ray.py trains with --strategy=multi_worker (Ray sets TF_CONFIG); got not {FLAGS.strategy}"
        )
    if importlib.util.find_spec("ray") is None:
        raise MnistTfError("train_ray.py needs Ray Train: pip install 'ray[train]'")
    config = dataclasses.replace(config_flags.training_config(), strategy="multi_worker").resolve()
    # Workers do not start in this directory: they get absolute paths.
    config = dataclasses.replace(
        config, **{f: os.path.abspath(getattr(config, f)) for f in PATH_FIELDS if getattr(config, f)}
    )
    model_dir = Path(config.model_dir)
    if FLAGS.fresh:  # here, once: workers that Ray restarts must resume, not start over
        with run_lock.hold(model_dir):
            run_state.clear(model_dir)
    train_on_ray(config)
    record = json.loads((model_dir / run_state.RESULTS_FILE).read_text())
    print(
        f"ray: {FLAGS.num_workers} workers ({record['replicas']} replicas)"
        f" · test accuracy {record['test_accuracy']:.4f} · weights sha256 {record['weights_sha256'][:12]}"
        f" · SavedModel: {record['export_dir']}"
    )


def train_on_ray(config: Config) -> None:
    """`run.run(config)` in every worker of a Ray Train TensorflowTrainer; returns once the chief has finished."""
    if not FLAGS.address:  # a local cluster: bound to 127.0.0.1 (Ray's Linux default is the machine's address)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    local = {} if FLAGS.address else {"num_cpus": FLAGS.num_workers * FLAGS.cpus_per_worker, "include_dashboard": False}
    ray.init(address=FLAGS.address or None, **local)
    try:
        trainer = TensorflowTrainer(
            _train_worker,
            train_loop_config={"config": config},
            scaling_config=ScalingConfig(
                num_workers=FLAGS.num_workers,
                use_gpu=FLAGS.use_gpu,
                resources_per_worker={"CPU": FLAGS.cpus_per_worker},
            ),
            run_config=RunConfig(name=f"mnist_tf-{config.name}", failure_config=FailureConfig(FLAGS.max_failures)),
        )
        trainer.fit()
    except ray.train.TrainingFailedError as e:
        raise MnistTfError(f"the Ray run failed ({FLAGS.max_failures} restarts allowed): {first_line(e)}") from None
    finally:
        ray.shutdown()


def _train_worker(loop_config: dict) -> None:
    """One Ray Train worker: TF_CONFIG is set, so this is one worker of the multi-worker run."""
    run.run(loop_config["config"])


if __name__ == "__main__":
    common.run(main)
