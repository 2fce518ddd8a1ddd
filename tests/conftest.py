"""Import the training package first: it sets the process-wide defaults (single-threaded OpenBLAS,
Keras/matplotlib caches in the project's .cache/ rather than the user's home) before any test
module imports numpy, TensorFlow or matplotlib."""
import training  # noqa: F401
