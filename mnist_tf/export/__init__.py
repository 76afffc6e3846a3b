"""Stage 4, outputs: SavedModels for TF Serving, the MNIST-style preprocessing inside them, trained runs as models."""
