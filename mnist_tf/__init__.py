"""mnist_tf: the TensorFlow/Keras reference implementation of handwritten-digit recognition (MNIST).

Importing the package sets up TensorFlow before it loads (`runtime.configure`): oneDNN kernels on x86-64 CPUs
and quiet C++ start-up logs; set TF_ENABLE_ONEDNN_OPTS or TF_CPP_MIN_LOG_LEVEL yourself to choose otherwise. Keras
loads without the scikit-learn and pandas it would import for features this project never uses.
"""

from mnist_tf import runtime

runtime.configure()
