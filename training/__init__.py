"""Training side of subkws: config, features, models, data windows, training, QAT, evaluation."""
import basics  # noqa: F401  (process-wide defaults: single-threaded BLAS, caches under .cache/)
