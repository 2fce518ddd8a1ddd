"""Training side of subkws: config, features, models, data windows, training, QAT, evaluation."""
import os as _os

# The matrices here are small (LFBE: 100 x 257 @ 257 x 64); multi-threaded OpenBLAS makes them
# 50x slower on a loaded 2-core machine. Users can still override it in their environment.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Keras writes keras.json and matplotlib its font cache under the user's home by default: keep
# them in the project's own .cache/ instead (users may point them elsewhere).
_cache = _os.path.join(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), ".cache")
_os.environ.setdefault("KERAS_HOME", _os.path.join(_cache, "keras"))
_os.environ.setdefault("MPLCONFIGDIR", _os.path.join(_cache, "matplotlib"))
