"""Multi-worker training (tf.distribute.MultiWorkerMirroredStrategy) with two local workers on
127.0.0.1: float + one QAT stage match a single worker, the quantizer ranges are the same on both
workers, a worker killed with SIGKILL resumes from the checkpoint, bad TF_CONFIG is one line."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dist_support import make_folder, tiny_args  # noqa: E402

from training.distribute import parse_tf_config  # noqa: E402
from basics.errors import UserError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# chief vs one worker on the same global batches (--shard-by data): the same arithmetic up to the
# order of the cross-replica sums
WEIGHT_TOLERANCE = 1e-4


def _env(**kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT), **kw)
    env.pop("TF_CONFIG", None)
    return {**env, **kw}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("dist")
    return tiny_args(make_folder(base / "rec"), base / "data")


def train(args, timeout=400, **env):
    return subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env=_env(**env), timeout=timeout)


def cluster_cmd(args, worker_dir, timeout=400):
    return [sys.executable, "-m", "training.cluster", "--workers", "2", "--timeout", str(timeout), "--worker-dir",
            str(worker_dir), "--", *args]


@pytest.mark.parametrize("text,msg", [
    ('{"cluster": ', "not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', 'expected {"cluster"'),
    ('{"cluster": {"worker": ["nohost"]}, "task": {"type": "worker", "index": 0}}', "'nohost' is not host:port"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 1}}', "index 1 is not in the cluster"),
    ('{"cluster": {"worker": ["h:1"], "ps": ["h:2"]}, "task": {"type": "worker", "index": 0}}', "job 'ps'"),
    ("", "not set"),
])
def test_tf_config_checked(text, msg):
    with pytest.raises(UserError, match=msg.replace("{", r"\{").replace("(", r"\(")):
        parse_tf_config(text)
    workers, t, i = parse_tf_config('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}')
    assert workers == ["a:1", "b:2"] and (t, i) == ("worker", 1)


def test_malformed_tf_config_is_one_line(data, tmp_path):
    r = train([*data, "--strategy", "multiworker", "--run-dir", str(tmp_path / "r")], TF_CONFIG='{"cluster": ')
    assert r.returncode == 2 and r.stderr.strip().splitlines() == ["error: TF_CONFIG: not valid JSON (Expecting value: "
                                                                   "line 1 column 13 (char 12))"], r.stderr


def test_unreachable_worker_is_one_line_not_a_hang(data, tmp_path):
    from training.cluster import free_ports

    a, b = free_ports(2)
    tc = json.dumps({"cluster": {"worker": [f"127.0.0.1:{a}", f"127.0.0.1:{b}"]}, "task": {"type": "worker", "index": 0}})
    t0 = time.time()
    r = train([*data, "--strategy", "multiworker", "--run-dir", str(tmp_path / "r")], timeout=120, TF_CONFIG=tc,
              SUBKWS_CONNECT_TIMEOUT="3")
    assert r.returncode != 0 and time.time() - t0 < 110
    errors = [l for l in r.stderr.splitlines() if l.startswith("error")]
    assert errors == [f"error: TF_CONFIG: worker 127.0.0.1:{b} not reachable within 3 s (SUBKWS_CONNECT_TIMEOUT)"]
    assert not (tmp_path / "r").exists()


def _weights(path):
    import tf_keras as keras

    return keras.models.load_model(str(path), compile=False).get_weights()


def test_two_workers_float_and_qat_match_one_worker(data, tmp_path):
    q = ["--weight-bits", "4", "--stages", "one"]
    one = train([*data, *q, "--run-dir", str(tmp_path / "one" / "q")])
    assert one.returncode == 0, one.stderr[-2000:]
    wd = tmp_path / "workers"
    two = subprocess.run(cluster_cmd([*data, *q, "--shard-by", "data", "--run-dir", str(tmp_path / "two" / "q")], wd),
                         capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=450)
    assert two.returncode == 0, two.stderr[-2000:] + (wd / "worker-1.log").read_text()[-2000:]
    # float: the chief's model equals the single worker's
    a, b = _weights(tmp_path / "one" / "ffnn-beep-float" / "model.keras"), _weights(
        tmp_path / "two" / "ffnn-beep-float" / "model.keras")
    assert max(float(np.max(np.abs(x - y))) for x, y in zip(a, b)) <= WEIGHT_TOLERANCE
    # QAT: range variables identical on both workers, and as on one worker
    chief = json.loads((tmp_path / "two" / "q" / "report.json").read_text())
    worker = json.loads((wd / "worker-1" / "q" / "report.json").read_text())
    single = json.loads((tmp_path / "one" / "q" / "report.json").read_text())
    assert chief["ranges"] and chief["ranges"] == worker["ranges"]
    assert sorted(chief["ranges"]) == sorted(single["ranges"])
    for k, v in single["ranges"].items():
        assert abs(chief["ranges"][k] - v) <= WEIGHT_TOLERANCE * max(1.0, abs(v)), k
    # only the chief wrote the run directory, converted and evaluated
    assert (tmp_path / "two" / "q" / "model.tflite").is_file() and not (wd / "worker-1" / "q" / "model.tflite").exists()
    assert not list((tmp_path / "two").rglob("workertemp_*"))
    assert abs(chief["clip_accuracy"] - single["clip_accuracy"]) <= 1 / chief["test_clips"]


def test_sigkill_worker_then_resume(data, tmp_path):
    args = [*data, "--set", "train.epochs=4", "--run-dir", str(tmp_path / "f")]
    wd = tmp_path / "workers"
    p = subprocess.Popen(cluster_cmd(args, wd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                         env=_env())
    try:
        for line in p.stdout:
            if "float epoch 1/4" in line:
                break
        pids = json.loads((wd / "pids.json").read_text())
        os.kill(pids[1], signal.SIGKILL)  # worker 1, in epoch 2
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1 and "error: worker 1 killed by signal 9" in err, err[-2000:]
    assert not (tmp_path / "f" / "model.keras").exists()
    again = subprocess.run(cluster_cmd(args, wd), capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=450)
    assert again.returncode == 0, again.stderr[-2000:]
    epochs = [l.split("float epoch ")[1].split(":")[0] for l in again.stdout.splitlines() if "float epoch" in l]
    assert epochs and epochs[0] != "1/4" and epochs[-1] == "4/4", epochs  # resumed after the last finished epoch
    assert (tmp_path / "f" / "model.keras").is_file()
