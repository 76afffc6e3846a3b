"""Stage 1, data: IDX files, the data sources (tfds, IDX, scikit-learn digits) and the tf.data pipeline."""
