"""The shared basics at the bottom of the import graph: every other package may import these, and
they import nothing of the project (standard library, numpy, scipy/soundfile for audio).

* ``errors``: ``UserError`` (one line, non-zero exit, no traceback), ``cli_main``, ``read_json``
* ``atomic``: writes that never leave a half-written file under the final name
* ``audio``: the one audio reader/writer (mono float32 at 16 kHz)
* ``classes``: the class ids a model outputs (shared by training, evaluation and the firmware)
* ``streams``: which context windows follow each other, fed one step each to a stateful model

Importing the package sets the process-wide defaults below (every project tool imports it, directly
or through its own package, before numpy, TensorFlow or matplotlib start).
"""
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
