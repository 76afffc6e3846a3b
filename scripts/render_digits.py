r"""Writes image files of digits that are not MNIST's (mnist_tf/data/rendered.py: pen strokes and fonts), to see
how a model copes with other handwriting. Each in both polarities: dark ink on light paper as PNG, light on dark as
JPEG or PNG. A file is named <digit>_<kind>_<style>-<polarity>, so the true digit is the name's first character:

python scripts/render_digits.py --output_dir=/tmp/digits
python scripts/predict.py --saved_model=saved_models/lenet /tmp/digits/*     # then compare with the names

With --writer_per_digit=N it writes one person's handwriting instead (rendered.WRITER_STROKES), N of each digit in
a folder per digit: what --source=folder reads, to try fine-tuning (docs/datasets.md):

python scripts/render_digits.py --output_dir=/tmp/writer --writer_per_digit=10
python scripts/train.py --source=folder --data_dir=/tmp/writer --init_from=saved_models/lenet
"""

from __future__ import annotations

from pathlib import Path

import common
import numpy as np
from absl import flags
from PIL import Image

from mnist_tf.data import rendered

flags.DEFINE_string("output_dir", None, "Where to write the image files (created if missing).")
flags.DEFINE_string("fonts_dir", "/usr/share/fonts/truetype", "Where to look for TrueType fonts (*.ttf).")
flags.DEFINE_integer("seed", 0, "Seed of the placements.", lower_bound=0)
flags.DEFINE_integer(
    "writer_per_digit", 0, "Instead, this many of each digit in one person's hand, a folder per digit.", lower_bound=0
)
flags.mark_flag_as_required("output_dir")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    output = Path(FLAGS.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(FLAGS.seed)
    if FLAGS.writer_per_digit:
        for i, (digit, image) in enumerate(rendered.writer(rng, FLAGS.writer_per_digit)):
            (output / str(digit)).mkdir(exist_ok=True)
            image.save(output / str(digit) / f"{i}.png")
        print(f"wrote {10 * FLAGS.writer_per_digit} images of one writer to {output}/<digit>/")
        return
    written = 0
    for name, image in rendered.digits(rng, FLAGS.fonts_dir):
        image.save(output / f"{name}-dark.png")
        inverted = Image.eval(image, lambda v: 255 - v)
        if rng.random() < 0.5:
            inverted.convert("RGB").save(output / f"{name}-light.jpg", quality=90)
        else:
            inverted.save(output / f"{name}-light.png")
        written += 2
    print(f"wrote {written} images ({len(rendered.font_files(FLAGS.fonts_dir))} fonts) to {output}")


if __name__ == "__main__":
    common.run(main)
