"""The race: our training loop against Keras `model.fit`, each contender in its own process, taking turns."""
