"""The feature store: what is read equals what was written, shards are even, a killed build
continues, a damaged shard or a store of other parameters is refused with one line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dist_support import make_folder, tiny_config  # noqa: E402

from training import feature_store as fs  # noqa: E402
from training.dataset import WindowConfig  # noqa: E402
from basics.errors import UserError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from training.dataset import WindowConfig, prepare_data

    base = tmp_path_factory.mktemp("store")
    cfg = tiny_config(make_folder(base / "rec"), base / "data")
    dataset = prepare_data(cfg.data, progress=False)
    store = fs.ensure_store(WindowConfig.of(cfg), dataset, workers=1)
    return cfg, dataset, store


def _direct(cfg, dataset, split):
    """The split's windows computed without the store (the same functions, in job order)."""
    from training.dataset import WindowConfig, _clip_job, _worker_init, split_background, split_jobs

    _worker_init(WindowConfig.of(cfg), str(dataset))
    jobs, seed = split_jobs(cfg.data, dataset, split)
    parts = [_clip_job(j) for j in jobs]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    bg = split_background(WindowConfig.of(cfg), dataset, seed, len(jobs), len(y))
    return np.concatenate([x, bg]).astype(np.float32), np.concatenate([y, np.zeros(len(bg), np.int32)])


def test_round_trip(built):
    cfg, dataset, store = built
    for split in ("train", "val"):
        x, y = fs.read_arrays(store, split)
        dx, dy = _direct(cfg, dataset, split)
        assert x.tobytes() == dx.tobytes() and y.tobytes() == dy.tobytes()


def test_shards_even_and_counted(built):
    _, _, store = built
    sp = store.manifest["splits"]["train"]
    n = [sh["records"] for sh in sp["shards"]]
    assert len(n) == 8 and max(n) - min(n) <= 1 and sum(n) == sp["records"]
    assert np.sum([sh["classes"] for sh in sp["shards"]], axis=0).tolist() == sp["classes"]
    assert sum(sp["per_source"].values()) == sp["records"] and sp["per_source"]["background"] == sp["classes"][0]
    x, y = fs.read_arrays(store, "train")
    assert np.bincount(y, minlength=3).tolist() == sp["classes"]


def test_tf_dataset_deterministic_per_seed(built):
    _, _, store = built

    def order(seed):
        return np.concatenate([b[0].numpy()[:, 0] for b in fs.tf_dataset(store, "train", seed=seed).batch(128)])

    a, b, c = order(1), order(1), order(2)
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()
    x, _ = fs.read_arrays(store, "train")
    assert np.array_equal(np.sort(a), np.sort(x[:, 0]))


def test_param_mismatch_refused(built):
    cfg, _, store = built
    other = tiny_config(Path(cfg.data.folder), Path(cfg.data.root))
    other.features.num_mel_bins = 20
    with pytest.raises(UserError, match=r"features\.num_mel_bins 16 \(store\) != 20 \(config\)"):
        fs.open_store(store.path, fs.WindowConfig.of(other))


def test_corrupt_and_truncated_shard_refused(built, tmp_path):
    import shutil

    _, _, store = built
    bad = tmp_path / "s"
    shutil.copytree(store.path, bad)
    shard = bad / store.manifest["splits"]["train"]["shards"][3]["file"]
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(UserError, match=f"{shard}: feature store shard corrupt"):
        fs.open_store(bad)
    shard.write_bytes(bytes(data[:-10]))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "training.feature_store", "check", str(bad)], capture_output=True,
                       text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert f"{shard}: feature store shard truncated" in r.stderr


class Killed(Exception):
    pass


def test_killed_build_continues(built, tmp_path, monkeypatch):
    cfg, dataset, store = built
    monkeypatch.setattr(fs, "PART_CLIPS", 8)
    calls, killed = [], []
    real = fs._part_job

    def dying(job):
        calls.append(f"{job[2].parent.name}/{job[0]}")
        if job[0] == 3 and not killed:
            killed.append(job[0])
            raise Killed  # the build is killed while computing part 3
        return real(job)

    monkeypatch.setattr(fs, "_part_job", dying)
    fs.use_store(tmp_path / "resumed")
    try:
        with pytest.raises(Killed):
            fs.ensure_store(fs.WindowConfig.of(cfg), dataset, workers=1)
        assert not (tmp_path / "resumed" / "manifest.json").exists()
        done = sorted(p.name for p in (tmp_path / "resumed" / "parts" / "train").glob("part-*.npz"))
        assert done == ["part-00000.npz", "part-00001.npz", "part-00002.npz"]
        calls.clear()
        again = fs.ensure_store(fs.WindowConfig.of(cfg), dataset, workers=1)
        assert "train/0" not in calls and "train/3" in calls  # finished parts are not computed again
    finally:
        fs.use_store(None)
    for split in ("train", "val"):
        a, b = fs.read_arrays(again, split), fs.read_arrays(store, split)
        assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    assert json.loads((again.path / "manifest.json").read_text())["splits"]["train"]["records"] == store.count("train")


def test_fit_input_mixes_the_extra_windows(built, tmp_path):
    """Hard negatives appended after the store's windows (recipe.with_hard_negatives) are drawn with
    the store's, in proportion to their counts: the mining rounds and the QAT stages train on them."""
    cfg, dataset, store = built
    x, y = fs.read_arrays(store, "train")
    bins = cfg.features.num_mel_bins
    (tmp_path / "dataset.json").write_text(json.dumps({"dataset": str(dataset)}))
    (tmp_path / "normalizer.json").write_text(json.dumps({"mean": [0.0] * bins, "std": [1.0] * bins}))
    extra = np.full((len(y), x.shape[1]), 123.0, np.float32)  # as many extra windows as stored ones
    fi = fs.fit_input(WindowConfig.of(cfg), cfg.train, tmp_path, (np.concatenate([x, extra]), np.concatenate([y, np.ones(len(y), np.int32)])),
                      3, seed=1)
    assert fi is not None and fi.steps == -(-2 * len(y) // cfg.train.batch_size)
    xb = np.concatenate([b[0].numpy() for b, _ in zip(fi.data, range(4))])
    share = float(np.mean(np.all(xb == 123.0, axis=1)))
    assert 0.3 < share < 0.7, share


def test_second_builder_waits_for_the_first_and_opens_its_store(built, tmp_path, monkeypatch, capsys):
    """Two runs on one data set started together: the second waits on the build lock, then opens the
    store the first wrote instead of building (and deleting parts under) it a second time."""
    import fcntl
    import shutil
    import threading

    cfg, dataset, store = built
    dest = tmp_path / "shared"
    dest.mkdir()
    built_twice = []
    monkeypatch.setattr(fs, "build_split_store", lambda *a, **k: built_twice.append(a) or {})
    fs.use_store(dest)
    try:
        with open(dest / ".build.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)   # "the first process" is building
            out = []
            t = threading.Thread(target=lambda: out.append(fs.ensure_store(fs.WindowConfig.of(cfg), dataset, workers=1)))
            t.start()
            t.join(1.0)
            assert t.is_alive() and not out   # the second one waits
            for f in store.path.iterdir():    # the first one finishes: shards, then the manifest
                if f.is_file() and not f.name.startswith("."):
                    shutil.copyfile(f, dest / f.name)
            fcntl.flock(fh, fcntl.LOCK_UN)
        t.join(30)
        assert not t.is_alive() and out and not built_twice
        assert "another process is building it" in capsys.readouterr().err
        a, b = fs.read_arrays(out[0], "train"), fs.read_arrays(store, "train")
        assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    finally:
        fs.use_store(None)
