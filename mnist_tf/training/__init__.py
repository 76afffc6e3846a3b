"""Stage 3, training: the compiled steps, the epoch loop and the run, with checkpoints, exact resume,
interruption, early stopping and distribution strategies."""
