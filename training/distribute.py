"""tf.distribute for training: ``train.py --strategy default|mirrored|multiworker``.

* ``default``: no strategy (one device), as before;
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over the local GPUs (one replica on a CPU-only host);
* ``multiworker``: ``tf.distribute.MultiWorkerMirroredStrategy`` configured by ``TF_CONFIG``
  (validated here: a malformed one, or a worker that does not answer within
  ``SUBKWS_CONNECT_TIMEOUT`` seconds (default 120), is one error line and exit 2, not a hang).

Every worker runs the same code. Only the chief (worker 0) writes the run directory; every other
worker writes the same files into its own folder, ``$SUBKWS_WORKER_DIR`` (``training.cluster``
sets it) or a temporary folder, so that operations which need all workers (saving reads
synchronized variables) happen on all of them. Checkpoints for BackupAndRestore are read from the
chief's run directory by every worker (``shared_path``): the run directory must be on a file system
all workers see. See docs/distributed.md.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from basics.atomic import atomic_write_text
from basics.errors import UserError

STRATEGIES = ("default", "mirrored", "multiworker")
_S: dict = {"name": "default", "strategy": None, "chief_root": None, "local_root": None, "task": ("worker", 0),
            "workers": 1}


def parse_tf_config(text: str | None) -> tuple[list[str], str, int]:
    """(worker addresses, task type, task index) from a TF_CONFIG string; UserError if malformed."""
    if not text:
        raise UserError("TF_CONFIG: not set (--strategy multiworker needs it; see docs/distributed.md)")
    try:
        tc = json.loads(text)
    except ValueError as e:
        raise UserError(f"TF_CONFIG: not valid JSON ({str(e)[:60]})") from None
    if not isinstance(tc, dict) or not isinstance(tc.get("cluster"), dict) or not isinstance(tc.get("task"), dict):
        raise UserError('TF_CONFIG: expected {"cluster": {"worker": [...]}, "task": {"type": ..., "index": ...}}')
    cl, task = tc["cluster"], tc["task"]
    extra = sorted(set(cl) - {"worker", "chief"})
    if extra:
        raise UserError(f"TF_CONFIG: cluster job '{extra[0]}' is not used by MultiWorkerMirroredStrategy (worker, chief)")
    workers = list(cl.get("chief", [])) + list(cl.get("worker", []))
    if not workers or not all(isinstance(w, str) for w in workers):
        raise UserError("TF_CONFIG: cluster.worker must be a non-empty list of \"host:port\" strings")
    for w in workers:
        host, _, port = w.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UserError(f"TF_CONFIG: worker address '{w}' is not host:port")
    ttype, idx = task.get("type"), task.get("index")
    if ttype not in cl or isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < len(cl[ttype]):
        raise UserError(f"TF_CONFIG: task {ttype!r} index {idx!r} is not in the cluster")
    return workers, ttype, idx


def _reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
            return True
    except OSError:
        return False


def wait_for_workers(addresses: list[str], timeout_s: float) -> None:
    """Return when every address accepts a TCP connection; UserError naming one that does not."""
    t_end = time.time() + timeout_s
    for a in addresses:
        host, _, port = a.rpartition(":")
        while True:
            try:
                with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
                    break
            except OSError:
                if time.time() > t_end:
                    raise UserError(f"TF_CONFIG: worker {a} not reachable within {timeout_s:g} s") from None
                time.sleep(0.5)


_WATCHDOG = r"""
import os, select, signal, socket, sys
pid, timeout, addrs = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
r, _, _ = select.select([sys.stdin], [], [], timeout)
if r:
    sys.exit(0)  # "ok" (the cluster formed) or end of file (the worker ended)
def up(a):
    h, _, p = a.rpartition(":")
    try:
        socket.create_connection((h.strip("[]"), int(p)), timeout=2).close()
        return True
    except OSError:
        return False
down = [a for a in addrs if not up(a)]
what = "worker %s not reachable" % down[0] if down else "the cluster did not form"
sys.stderr.write("error: TF_CONFIG: %s within %g s (SUBKWS_CONNECT_TIMEOUT)\n" % (what, timeout))
sys.stderr.flush()
os.kill(pid, signal.SIGKILL)
"""


def start_watchdog(workers: list[str], timeout_s: float):
    """A small process that kills this one with one error line unless told "ok" within timeout_s."""

    return subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(timeout_s), *workers],
                            stdin=subprocess.PIPE)


def setup(name: str, run_dir: Path, shard_by: str = "file") -> Path:
    """Create the strategy (before any other TensorFlow work) and return this process's run
    directory: ``run_dir`` on the chief, a private folder on the other workers."""
    if name not in STRATEGIES:
        raise UserError(f"--strategy: '{name}' (default, mirrored or multiworker)")
    if name == "multiworker":  # before TensorFlow starts: a malformed TF_CONFIG is one line at once
        parse_tf_config(os.environ.get("TF_CONFIG"))
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    _S.update(name=name, chief_root=None, local_root=None, task=("worker", 0), workers=1, shard_by=shard_by)
    if name == "default":
        _S["strategy"] = tf.distribute.get_strategy()
        return run_dir
    if name == "mirrored":
        _S["strategy"] = tf.distribute.MirroredStrategy()
        return run_dir
    workers, ttype, idx = parse_tf_config(os.environ.get("TF_CONFIG"))
    timeout = float(os.environ.get("SUBKWS_CONNECT_TIMEOUT", "120"))
    opts = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)
    # the strategy's constructor waits for every worker, without a limit and holding the GIL: a
    # watchdog process ends this one with one line when the cluster has not formed in time
    dog = start_watchdog(workers, timeout)
    _S["strategy"] = tf.distribute.MultiWorkerMirroredStrategy(communication_options=opts)
    dog.stdin.write(b"ok\n")
    dog.stdin.close()
    wait_for_workers(workers, timeout)
    _S.update(task=(ttype, idx), workers=len(workers))
    if is_chief():
        return run_dir
    local = Path(os.environ.get("SUBKWS_WORKER_DIR") or tempfile.mkdtemp(prefix=f"subkws-worker{idx}-"))
    local.mkdir(parents=True, exist_ok=True)
    _S.update(chief_root=Path(run_dir).resolve().parent, local_root=local.resolve())
    return local / Path(run_dir).name


def strategy():
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    return _S["strategy"] or tf.distribute.get_strategy()


def name() -> str:
    return _S["name"]


def scope():
    return strategy().scope()


def is_chief() -> bool:
    if _S["name"] != "multiworker":
        return True
    ttype, idx = _S["task"]
    return ttype == "chief" or (ttype == "worker" and idx == 0 and not _has_chief_job())


def _has_chief_job() -> bool:
    try:
        return "chief" in json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except ValueError:
        return False


def multi_worker() -> bool:
    return _S["name"] == "multiworker" and _S["workers"] > 1


def num_workers() -> int:
    return _S["workers"]


def worker_index() -> int:
    """0 on the chief, 1.. on the other workers (their order in TF_CONFIG)."""
    ttype, idx = _S["task"]
    return idx + (1 if ttype == "worker" and _has_chief_job() else 0)


def shared_path(p: Path) -> Path:
    """The chief's copy of a path under this worker's run directory (identity on the chief)."""
    if _S["local_root"] is None:
        return Path(p)
    try:
        rel = Path(p).resolve().relative_to(_S["local_root"])
    except ValueError:
        return Path(p)
    return _S["chief_root"] / rel


def barrier() -> None:
    """Every worker waits here for all the others (a tiny all-reduce); no-op on one worker."""
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    if not multi_worker():
        return
    s = strategy()

    @tf.function
    def step():
        return s.reduce(tf.distribute.ReduceOp.SUM, s.run(lambda: tf.constant(1.0)), axis=None)

    step()


def load_weights(model, path: Path) -> None:
    """``model.load_weights`` of a Keras .weights.h5 file. Under a strategy with several replicas
    the stored values are read into numpy first: tf_keras hands h5py datasets to the assignment,
    which fails for synchronized-on-read variables (BatchNorm's moving statistics)."""
    if _S["name"] == "default":
        model.load_weights(str(path))
        return
    from tf_keras.src.saving import saving_lib  # lazy: heavy dependency, loaded only when this runs

    real = saving_lib.H5IOStore.get

    def get(self, p):
        g = real(self, p)
        return {k: np.asarray(g[k]) for k in g.keys()}

    saving_lib.H5IOStore.get = get
    try:
        model.load_weights(str(path))
    finally:
        saving_lib.H5IOStore.get = real


def shard_by() -> str:
    return _S.get("shard_by", "file")


def wait_for_chief(path: Path, timeout_s: float | None = None) -> None:
    """On a non-chief worker: wait until the chief's copy of ``path`` exists (the chief prepares the
    data and the feature store once; the workers then read them). No-op on the chief."""
    if is_chief():
        return
    p = shared_path(path)
    timeout_s = float(os.environ.get("SUBKWS_DATA_TIMEOUT", "21600")) if timeout_s is None else timeout_s
    t_end = time.time() + timeout_s
    while not p.is_file():
        if time.time() > t_end:
            raise UserError(f"{p}: the chief has not prepared the data within {timeout_s:g} s")
        time.sleep(1.0)


def quantizer_ranges(model) -> dict:
    """{variable name: value} of every quantizer range variable (``*_min``/``*_max``) of a model."""

    out = {}
    for v in model.weights:
        n = v.name.split(":")[0]
        if n.endswith("_min") or n.endswith("_max"):
            out[n] = np.asarray(v.numpy(), np.float64).tolist()
    return out


def worker_report(run_dir: Path, model) -> dict:
    """What a non-chief worker keeps of a finished stage: its quantizer ranges (to compare with the
    chief's), in its own folder."""

    rep = {"worker": worker_index(), "ranges": quantizer_ranges(model)}
    atomic_write_text(Path(run_dir) / "report.json", json.dumps(rep, indent=1) + "\n")
    return rep


def sync_batchnorm(model) -> int:
    """With several replicas: BatchNormalization layers normalize with the global batch's mean and
    variance (``synchronized``), as one worker would with the whole batch. Returns how many."""
    import tf_keras as keras  # lazy: heavy dependency, loaded only when this runs

    if strategy().num_replicas_in_sync == 1:
        return 0
    n = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized, layer.fused = True, False
            n += 1
    return n
