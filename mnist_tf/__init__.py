"""mnist_tf: the TensorFlow/Keras reference implementation of handwritten-digit recognition (MNIST).

Importing the package quiets TensorFlow's C++ start-up logs (see `console.silence_tensorflow`); set
TF_CPP_MIN_LOG_LEVEL yourself to see them.
"""

from mnist_tf.console import silence_tensorflow

silence_tensorflow()
