r"""Where the training step's time goes: a table of op time per step by what it does (docs/performance.md).

python scripts/profile_step.py --model=lenet --data_dir=../shared/datasets/mnist       # train.py's step
python scripts/profile_step.py --model=lenet --augment=false --not_digits=0            # the race's step
"""

from __future__ import annotations

import common
import config_flags
from absl import flags

from mnist_tf.benchmark import profile
from mnist_tf.data import pipeline
from mnist_tf.plan import prepare
from mnist_tf.training.trainer import Trainer

config_flags.define_training_flags()
flags.adopt_module_key_flags(config_flags)
flags.DEFINE_integer("steps", 50, "Steps to profile, after ten of warm-up.", lower_bound=1)
flags.DEFINE_integer("top_ops", 8, "Also list the op types that took most time (0: none).", lower_bound=0)
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    plan = prepare(config_flags.training_config(), new_run=False)  # profiles, writes no run
    config, train = plan.config, plan.splits.train
    trainer = Trainer.from_config(config, plan.strategy, train, total_steps=10_000)
    batches = iter(pipeline.train_dataset(train, config.batch_size, config.seed))
    result = profile.profile(trainer, batches, FLAGS.steps)
    print(f"{config.name}, batch {config.batch_size}, {config.dtype}: {FLAGS.steps} steps\n")
    print(result.table())
    if FLAGS.top_ops:
        top = sorted(result.ops.items(), key=lambda item: -item[1])[: FLAGS.top_ops]
        print("\nop types: " + ", ".join(f"{kind} {t * 1000 / FLAGS.steps:.2f} ms" for kind, t in top))


if __name__ == "__main__":
    common.run(main)
