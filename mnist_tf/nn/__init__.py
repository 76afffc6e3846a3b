"""Stage 2, the network: low-level layers and initializers on raw tf ops, the model registry, losses, optimizers.

Nothing here reads a `Config`: `mnist_tf.training.build` turns one into a model and an optimizer.
"""
