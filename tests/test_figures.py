"""The pictures TensorBoard shows: sizes, where the pixels go, what the colors mean."""

import numpy as np
import pytest

from mnist_tf.reporting import figures


def test_grid_places_each_tile_scaled_with_its_caption_below():
    images = np.zeros((5, 3, 4))
    images[2] = 1.0  # one white tile
    picture = figures.grid(images, captions=list("abcde"), columns=2, scale=2, pad=1)
    tile_h, tile_w = 3 * 2, 4 * 2
    cell_h, cell_w = tile_h + 1 + figures.CAPTION_HEIGHT, tile_w + 1
    assert picture.shape == (3 * cell_h + 1, 2 * cell_w + 1, 3) and picture.dtype == np.uint8
    top, left = 1 + cell_h, 1  # tile 2: row 1, column 0
    assert (picture[top : top + tile_h, left : left + tile_w] == 255).all()
    assert (picture[1 : 1 + tile_h, 1 : 1 + tile_w] == 0).all()  # tile 0 is black
    caption = picture[top + tile_h : top + cell_h, left : left + tile_w]
    assert caption.min() < 128  # text was drawn under the tile
    assert (picture[2 * cell_h + 1 :, cell_w + 1 :] == 255).all()  # the sixth cell stays empty


def test_grid_without_captions_has_no_caption_rows():
    picture = figures.grid(np.ones((4, 28, 28, 1)) * 0.5)
    assert picture.shape == (2 * 30 + 2, 2 * 30 + 2, 3)
    assert picture[2, 2, 0] == 127


def test_dense_kernel_gives_each_unit_as_an_image_tile_scaled_around_gray():
    kernel = np.zeros((28 * 28, 3), np.float32)
    kernel[0, 0], kernel[5, 0] = -2.0, 1.0  # unit 0: pixel (0, 0) most negative, (0, 5) half as positive
    kernel[28, 1] = 0.5  # unit 1: pixel (1, 0)
    tiles = figures.weight_tiles(kernel, (28, 28, 1))
    assert tiles.shape == (3, 28, 28)
    assert tiles[0, 0, 0] == 0.0 and tiles[0, 0, 5] == 0.75 and tiles[0, 1, 1] == 0.5
    assert tiles[1, 1, 0] == 1.0
    assert (tiles[2] == 0.5).all()  # an all-zero unit is plain gray, not NaN


def test_conv_kernel_gives_each_filter_and_wide_layers_are_capped():
    kernel = np.random.default_rng(0).normal(size=(5, 5, 1, 20))
    tiles = figures.weight_tiles(kernel, (28, 28, 1))
    assert tiles.shape == (20, 5, 5)
    np.testing.assert_allclose(tiles[3], 0.5 + 0.5 * kernel[..., 0, 3] / np.abs(kernel[..., 0, 3]).max())
    assert figures.weight_tiles(np.ones((784, 800)), (28, 28, 1)).shape == (100, 28, 28)


def test_a_kernel_that_is_not_over_the_image_is_refused():
    with pytest.raises(ValueError, match=r"kernel of shape \[500, 10\] is not a first layer over \[28, 28, 1\]"):
        figures.weight_tiles(np.ones((500, 10)), (28, 28, 1))


def test_confusion_matrix_picture_has_its_documented_size_and_colors():
    confusion = np.diag([980, 1130, 1000, 1000, 980, 890, 950, 1020, 970, 1000])
    confusion[4, 9] = 12  # the worst mistake
    picture = figures.confusion_matrix(confusion)
    assert picture.shape == (figures.CONFUSION_TOP + 10 * figures.CELL, figures.CONFUSION_LEFT + 10 * figures.CELL, 3)

    def corner(true, predicted):  # a pixel inside the cell, clear of its count
        return picture[
            figures.CONFUSION_TOP + true * figures.CELL + 3, figures.CONFUSION_LEFT + predicted * figures.CELL + 3
        ]

    red, _, blue = corner(0, 0).astype(int)
    assert blue > red + 100  # a right answer: blue
    red, _, blue = corner(4, 9).astype(int)
    assert red > blue + 100  # the worst mistake: full red
    assert (corner(2, 7) == 255).all()  # no images: white
