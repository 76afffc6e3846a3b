"""The sets `scripts/evaluate.py --ood` measures "not a digit" on: images a digit model must refuse, and real
handwriting it must still accept. Each is drawn from a fixed seed, so every model meets the same images.

  fashion      Fashion-MNIST test: clothes, shoes and bags (a digit model never sees one in training)
  fonts        letters and symbols of HELD_OUT_FAMILY, a font family training never draws from
  ambiguous    the same font's characters that people also write as digits (O, l, Z, S, b, q ...): counted apart
  noise        pixel noise, empty images, and photos of blank, smudged or lined paper
  handwriting  MNIST test digits photographed (`handwriting.photographed`): must be accepted, and read right
  scans        MNIST test digits scanned from grey paper, cropped tight (`people.scanned`): must be accepted
  photos       MNIST test digits on squared paper under a phone's uneven light (`people.photographed`): accepted
  drawn        digits drawn in shapes MNIST seldom has: crossed 7s, flagged 1s, open 4s (`people.SHAPES`): accepted
  doodles      line drawings of cats, fish, cups, houses ... (`people.DOODLES`)
  symbols      handwritten + - x ÷ = / · < > % and arrows (`people.SYMBOLS`)
  letters      handwritten letters, capitals and small (`people.LETTERS`)
  lookalikes   handwritten letters people also write as digits, O l I Z S b g q (`people.LOOKALIKES`): apart
  digits8x8    scikit-learn's 1,797 8x8 digits, upscaled (bilinear) into MNIST's 20x20 box: must be accepted
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from mnist_tf.data import idx, preprocess, sources
from mnist_tf.data.sources import Split
from mnist_tf.errors import MnistTfError
from mnist_tf.not_a_digit import handwriting, not_digits, people

FASHION_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
SETS = (
    "fashion", "fonts", "ambiguous", "noise", "handwriting", "scans", "photos", "drawn", "doodles", "symbols",
    "letters", "lookalikes", "digits8x8",
)  # fmt: skip
SIZE = 2000  # images per generated set
_DRAWN = {  # the sets drawn as strokes: their shapes
    "drawn": people.SHAPES,
    "doodles": people.DOODLES,
    "symbols": people.SYMBOLS,
    "letters": people.LETTERS,
    "lookalikes": people.LOOKALIKES,
}
_SEED = 20170  # fixed: every model is measured on the same images


@dataclasses.dataclass(frozen=True)
class OodSet:
    """uint8 images [N, 28, 28, 1], and labels for the digits that must be accepted (None: must be refused)."""

    name: str
    images: np.ndarray
    labels: np.ndarray | None
    kinds: np.ndarray | None = None  # of a drawn set that must be refused: what each image is (slash, house, ...)

    @property
    def digits(self) -> bool:
        return self.labels is not None


def load(name: str, test: Split, fashion_dir: str = FASHION_DIR, fonts_dir: str = not_digits.FONTS_DIR) -> OodSet:
    """The set `name` (one of SETS); `test` is MNIST test, which `handwriting` photographs."""
    if name not in SETS:
        raise MnistTfError(f"--ood={name!r} is not one of: {', '.join(SETS)}")
    rng = np.random.default_rng([_SEED, SETS.index(name)])
    if name == "fashion":
        try:
            images, _ = idx.load_split(fashion_dir, "test")
        except MnistTfError as e:
            raise MnistTfError(f"--ood=fashion: {e} (apt-get install dataset-fashion-mnist)") from None
        return OodSet(name, images.reshape(-1, 28, 28, 1), None)
    if name in ("fonts", "ambiguous"):
        fonts = not_digits.font_files(fonts_dir, held_out=True)
        if not fonts:
            family = not_digits.HELD_OUT_FAMILY
            raise MnistTfError(f"--ood={name}: no {family} fonts under {fonts_dir} (apt-get install fonts-liberation)")
        characters = not_digits.CHARACTERS if name == "fonts" else not_digits.AMBIGUOUS
        return OodSet(name, preprocess.to_mnist_each(not_digits.glyphs(rng, SIZE, fonts, characters)), None)
    if name == "noise":
        kinds = [not_digits.noise(rng, SIZE // 2), not_digits.paper(rng, SIZE - SIZE // 2)]
        return OodSet(name, np.concatenate([preprocess.to_mnist_each(kind) for kind in kinds]), None)
    if name == "digits8x8":
        return _upscaled(sources.scikit_learn_digits(wanted_by="--ood=digits8x8"))
    if name in _DRAWN:
        shapes = _DRAWN[name]
        files, names = people.drawings(rng, shapes, SIZE // 2)
        images = handwriting.as_served(files)
        return OodSet(name, images, np.array(names)) if name == "drawn" else OodSet(name, images, None, np.array(names))
    chosen = rng.choice(len(test), min(SIZE, len(test)), replace=False)  # MNIST test digits, written again
    if name == "handwriting":
        files = handwriting.photographed(test.images[chosen], rng)
    else:
        files = [people.CAPTURES[name](image.reshape(28, 28), rng) for image in test.images[chosen]]
    return OodSet(name, handwriting.as_served(files), test.labels[chosen])


def _upscaled(digits: Split) -> OodSet:
    """Small digits (uint8 [N, rows, cols, 1]) stretched (bilinear) into the middle 20x20 of a 28x28 image."""
    images = np.zeros((len(digits.labels), 28, 28, 1), np.uint8)
    for image, digit in zip(images, digits.images, strict=True):
        image[4:24, 4:24, 0] = np.asarray(Image.fromarray(digit[..., 0]).resize((20, 20), Image.BILINEAR))
    return OodSet("digits8x8", images, digits.labels)
