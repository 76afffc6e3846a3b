"""The race: our training loop against Keras `model.fit` and PyTorch, each contender in its own process, in turns."""
