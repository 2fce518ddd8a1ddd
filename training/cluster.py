"""Start N training workers on this machine: ``python -m training.cluster --workers 2 -- <train.py args>``.

For tests and demos of multi-worker training (docs/distributed.md has the recipe for real
clusters). Each worker is ``python training/train.py <args> --strategy multiworker`` with its own
``TF_CONFIG`` (all workers on 127.0.0.1, free ports) and, for workers 1.., ``SUBKWS_WORKER_DIR`` =
``<worker dir>/worker-<i>`` (their private output; the chief writes the run directory). The chief's
output passes through; the others' goes to ``<worker dir>/worker-<i>.log``; ``<worker dir>/pids.json``
lists the workers' process ids.

If a worker fails (or is killed) the others are stopped and the launcher exits 1 with one line;
started again with the same arguments the run resumes from its last checkpoint
(BackupAndRestore). ``--timeout`` bounds the whole run, ``--connect-timeout`` the wait for the
other workers (a worker that never answers is one error line, not a hang).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from basics.atomic import atomic_write_text
from basics.errors import UserError, cli_main
from basics.procs import die_with_parent

ROOT = Path(__file__).resolve().parent.parent


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports free on 127.0.0.1 now (the OS picks them)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def tf_config(addresses: list[str], index: int) -> str:
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})


def _die_with_parent():

    die_with_parent()


def _stop(procs: list[subprocess.Popen], grace_s: float = 10.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    t_end = time.time() + grace_s
    for p in procs:
        while p.poll() is None and time.time() < t_end:
            time.sleep(0.1)
        if p.poll() is None:
            p.kill()
            p.wait()


def run_cluster(workers: int, train_args: list[str], worker_dir: Path, timeout_s: float = 0,
                connect_timeout_s: float = 120, python: str = sys.executable) -> int:
    if workers < 1:
        raise UserError(f"--workers {workers}: need at least 1")
    if "--strategy" in train_args:
        raise UserError("the launcher sets --strategy multiworker; leave it out of the training arguments")
    worker_dir = Path(worker_dir)
    worker_dir.mkdir(parents=True, exist_ok=True)
    addrs = [f"127.0.0.1:{p}" for p in free_ports(workers)]
    procs, logs = [], []
    try:
        for i in range(workers):
            env = dict(os.environ, TF_CONFIG=tf_config(addrs, i), SUBKWS_CONNECT_TIMEOUT=str(connect_timeout_s),
                       PYTHONUNBUFFERED="1")
            env.pop("SUBKWS_WORKER_DIR", None)
            out = None
            if i > 0:
                env["SUBKWS_WORKER_DIR"] = str(worker_dir / f"worker-{i}")
                logf = open(worker_dir / f"worker-{i}.log", "ab")
                logs.append(logf)
                out = logf
            cmd = [python, str(ROOT / "training" / "train.py"), *train_args, "--strategy", "multiworker"]
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None,
                                          cwd=os.getcwd(), preexec_fn=_die_with_parent))
        atomic_write_text(worker_dir / "pids.json", json.dumps([p.pid for p in procs]) + "\n")
        t0 = time.time()
        while True:
            codes = [p.poll() for p in procs]
            bad = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if bad:
                i, c = bad[0]
                _stop(procs)
                where = f"log: {worker_dir / f'worker-{i}.log'}" if i else "output above"
                what = f"killed by signal {-c}" if c < 0 else f"exited with code {c}"
                print(f"error: worker {i} {what} ({where}); the others were stopped; run the same command again "
                      "to resume from the last checkpoint", file=sys.stderr)
                return 1
            if all(c == 0 for c in codes):
                return 0
            if timeout_s and time.time() - t0 > timeout_s:
                _stop(procs)
                print(f"error: the {workers} workers did not finish within {timeout_s:g} s (--timeout); stopped",
                      file=sys.stderr)
                return 1
            time.sleep(0.2)
    finally:
        _stop(procs)
        for f in logs:
            f.close()


@cli_main
def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        k = argv.index("--")
        own, train_args = argv[:k], argv[k + 1:]
    else:
        own, train_args = argv, []
    ap = argparse.ArgumentParser(prog="python -m training.cluster", description=__doc__.split("\n\n")[0],
                                 epilog="everything after -- goes to training/train.py")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=0, help="seconds for the whole run (0 = none)")
    ap.add_argument("--connect-timeout", type=float, default=120, help="seconds to wait for the other workers")
    ap.add_argument("--worker-dir", type=Path, help="private folders and logs of workers 1.. (default: a temporary folder)")
    a = ap.parse_args(own)
    wd = a.worker_dir or Path(tempfile.mkdtemp(prefix="subkws-cluster-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # runs the finally: the workers are stopped
    return run_cluster(a.workers, train_args, wd, a.timeout, a.connect_timeout)


if __name__ == "__main__":
    main()
