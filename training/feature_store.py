"""The feature store: a data set's LFBE windows and labels, written once into sharded TFRecord files.

Every training path reads its windows from here: ``build_split`` (in-memory arrays for the
normalizer, mining and conversion) and ``train.fit`` (a tf.data pipeline, the same on one machine
and on many, auto-sharded by file across the workers of a tf.distribute strategy).

Layout of a store (``<data set>/store/<key>/``, key = hash of the feature and window parameters and
the data set's manifest)::

    manifest.json                    version, feature parameters, per split: shards, counts
    train-00000-of-00008.tfrecord    one record per window (below)
    ...
    val-00000-of-00002.tfrecord

Record (one TFRecord record, little-endian, 12 + 4 D bytes, D = context_frames x num_mel_bins)::

    int32 label | int32 source id | float32 clip weight | float32 x[D] (LFBE window, not normalized)

``source id`` indexes the split's ``sources`` list in the manifest ("background" for the _silence_
windows); ``clip weight`` is the manifest weight of the window's clip (1 for background).

Window g of a split (the order of ``dataset.split_jobs``: clips in job order, then background)
goes to shard g mod S at position g // S: shards hold equal counts (+-1) and the split reads back
in its canonical order. The manifest records per shard its file, records, bytes, sha256 and class
counts, and per split the counts per class and per source.

Building is parallel and resumable: clip windows are computed by a process pool in parts of
``PART_CLIPS`` clips, each part saved atomically (``parts/``); a killed build keeps its finished
parts and continues. The shards are then written to temporaries and renamed, the manifest last:
a store is complete exactly when its manifest exists. Two processes that need the same store (two
seeds started together on one data set) do not build it twice: the second waits on a lock file
(``.build.lock``, an advisory ``flock``) and then opens what the first built.

``python -m training.feature_store build|check|info`` is the command line.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from training.config import TrainConfig, load_config, set_dotted
from training.dataset import (FEATURE_CACHE_VERSION, KEYWORD, WindowConfig, _clip_job, _worker_init, prepare_data,
                              read_manifest, split_background, split_jobs)
from basics.atomic import atomic_path, atomic_write_text, clean_stale_temporaries
from basics.errors import UserError, cli_main
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
import shutil
import soundfile as sf
import copy

STORE_VERSION = 1
HEADER_BYTES = 12
PART_CLIPS = 256
SHUFFLE_BUFFER = 20_000  # windows held for shuffling (~6 KB each at 24 x 64): bounded memory
SPLITS = ("train", "val")
BACKGROUND = "background"

_STORE_OVERRIDE: Path | None = None  # train.py --feature-store DIR


def default_shards(split: str) -> int:
    return 8 if split == "train" else 2


# ----------------------------------------------------------------------------- parameters
def feature_params(w: WindowConfig) -> dict:
    """What the stored windows depend on besides the audio: features and the windowing data keys."""

    d = asdict(w.data)
    # positive_weight reaches the windows only through the manifest's weight column, which the key hashes
    data = {k: v for k, v in d.items() if k not in ("stream_minutes", "root", "positive_weight")}
    for k in ("channel_augment", "soundalikes", "lexicon"):   # added later: off, they change nothing, so old stores stay valid
        if not data.get(k):
            data.pop(k, None)
    return {"features": asdict(w.features), "data": data, "window_code": FEATURE_CACHE_VERSION}


def store_key(w: WindowConfig, dataset: Path) -> str:
    man = Path(dataset) / "manifest.csv"
    d = {"v": STORE_VERSION, "params": feature_params(w), "manifest": hashlib.sha1(man.read_bytes()).hexdigest()}
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def use_store(path: str | Path | None) -> None:
    """Read (and build) the store in ``path`` instead of ``<data set>/store/<key>``."""
    global _STORE_OVERRIDE
    _STORE_OVERRIDE = Path(path) if path else None


def store_path(w: WindowConfig, dataset: Path) -> Path:
    if _STORE_OVERRIDE is not None:
        return _STORE_OVERRIDE
    return Path(dataset) / "store" / store_key(w, dataset)


def param_differences(stored: dict, want: dict, prefix: str = "") -> list[str]:
    """'section.key stored -> wanted' for every leaf that differs."""
    out = []
    for k in sorted(set(stored) | set(want)):
        a, b = stored.get(k, "<absent>"), want.get(k, "<absent>")
        name = f"{prefix}{k}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += param_differences(a, b, name + ".")
        elif a != b:
            out.append(f"{name} {a!r} (store) != {b!r} (config)")
    return out


# ----------------------------------------------------------------------------- opening
@dataclass
class Store:
    path: Path
    manifest: dict

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    def split(self, split: str) -> dict:
        s = self.manifest["splits"].get(split)
        if s is None:
            raise UserError(f"{self.path / 'manifest.json'}: no split '{split}' in the feature store")
        return s

    def files(self, split: str) -> list[str]:
        return [str(self.path / sh["file"]) for sh in self.split(split)["shards"]]

    def count(self, split: str) -> int:
        return int(self.split(split)["records"])


def open_store(path: str | Path, w: WindowConfig | None = None, verify: str = "full") -> Store:
    """The store in ``path``; UserError (one line) if it is incomplete, was built with other
    parameters than ``w``, or a shard is missing, truncated or corrupt (verify="size" checks
    sizes only, "full" also the sha256 of every shard)."""
    path = Path(path)
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise UserError(f"{path}: not a finished feature store (no manifest.json)")
    try:
        man = json.loads(mpath.read_text())
        if not isinstance(man, dict) or man.get("version") != STORE_VERSION or "splits" not in man:
            raise ValueError("unknown version or layout")
    except (OSError, ValueError) as e:
        raise UserError(f"{mpath}: corrupt feature store manifest ({str(e)[:80]})") from None
    if w is not None:
        diff = param_differences(man.get("params", {}), feature_params(w))
        if diff:
            raise UserError(f"{path}: feature store built with other parameters than the config: {'; '.join(diff[:4])}"
                            + (f" (+{len(diff) - 4} more)" if len(diff) > 4 else ""))
    for split in man["splits"].values():
        for sh in split["shards"]:
            f = path / sh["file"]
            if not f.is_file():
                raise UserError(f"{f}: feature store shard missing")
            size = f.stat().st_size
            if size != sh["bytes"]:
                raise UserError(f"{f}: feature store shard truncated or altered ({size} bytes, manifest says {sh['bytes']})")
            if verify == "full" and _sha256(f) != sh["sha256"]:
                raise UserError(f"{f}: feature store shard corrupt (sha256 differs from the manifest)")
    return Store(path, man)


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# ----------------------------------------------------------------------------- building
def _part_job(job: tuple) -> tuple[int, int]:
    """Worker: windows of one part's clips -> parts/part-NNNNN.npz (atomic); (part, windows)."""

    part, jobs, out = job
    xs, ys, ss, ws = [], [], [], []
    for j in jobs:
        x, y = _clip_job(j[:-2])
        xs.append(x)
        ys.append(y)
        ss.append(np.full(len(y), j[-2], np.int32))
        ws.append(np.full(len(y), j[-1], np.float32))
    dim = xs[0].shape[1] if xs else 0
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, x=np.concatenate(xs) if xs else np.zeros((0, dim), np.float32),
                     y=np.concatenate(ys) if ys else np.zeros(0, np.int32),
                     s=np.concatenate(ss) if ss else np.zeros(0, np.int32),
                     w=np.concatenate(ws) if ws else np.zeros(0, np.float32))
    return part, sum(len(y) for y in ys)


def _init_pool(w: WindowConfig, dataset: str) -> None:

    _worker_init(w, dataset)


def build_split_store(w: WindowConfig, dataset: Path, split: str, path: Path, shards: int | None = None,
                      workers: int | None = None, progress: bool = False) -> dict:
    """Compute one split's windows into ``path`` (parts, then shards); its manifest entry."""

    from tqdm import tqdm  # lazy: heavy dependency, loaded only when this runs


    dataset = Path(dataset)
    shards = shards or default_shards(split)
    jobs, seed = split_jobs(w.data, dataset, split)
    by_path = {str(c.path): c for c in read_manifest(dataset) if c.split == split}
    sources = sorted({by_path[j[0]].source for j in jobs} | {BACKGROUND})
    sid = {s: i for i, s in enumerate(sources)}
    tagged = [(*j, sid[by_path[j[0]].source], float(by_path[j[0]].weight)) for j in jobs]
    parts_dir = path / "parts" / split
    clean_stale_temporaries(parts_dir)
    todo = []
    for k in range(0, len(tagged), PART_CLIPS):
        out = parts_dir / f"part-{k // PART_CLIPS:05d}.npz"
        if not out.is_file():  # a killed build keeps its finished parts
            todo.append((k // PART_CLIPS, tagged[k:k + PART_CLIPS], out))
    n_parts = (len(tagged) + PART_CLIPS - 1) // PART_CLIPS
    workers = max(1, min(workers or min(os.cpu_count() or 1, 8), len(todo)))
    bar = tqdm(total=len(todo), desc=f"store {split}", disable=not progress, unit="part", leave=False)
    if workers <= 1:
        _init_pool(w, str(dataset))
        for t in todo:
            _part_job(t)
            bar.update()
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_pool,
                                 initargs=(w, str(dataset))) as ex:
            for _ in ex.map(_part_job, todo):
                bar.update()
    bar.close()
    part_files = [parts_dir / f"part-{k:05d}.npz" for k in range(n_parts)]
    n_clip = sum(len(np.load(f)["y"]) for f in part_files)
    bg = split_background(w, dataset, seed, len(jobs), n_clip).astype(np.float32)
    return _write_shards(path, split, shards, part_files, bg, sid[BACKGROUND], sources)


def _records(part_files: list[Path], bg: np.ndarray, bg_sid: int):
    """(x, y, source id, weight) blocks in the split's canonical order."""
    for f in part_files:
        z = np.load(f)
        yield z["x"], z["y"], z["s"], z["w"]
    yield bg, np.zeros(len(bg), np.int32), np.full(len(bg), bg_sid, np.int32), np.ones(len(bg), np.float32)


def encode(x: np.ndarray, y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(N, 3 + D) float32 rows whose bytes are the records (header words bit-cast)."""
    rows = np.empty((len(y), 3 + x.shape[1]), "<f4")
    rows[:, 0] = y.astype("<i4").view("<f4")
    rows[:, 1] = s.astype("<i4").view("<f4")
    rows[:, 2] = w.astype("<f4")
    rows[:, 3:] = x
    return rows


def _write_shards(path: Path, split: str, shards: int, part_files: list[Path], bg: np.ndarray, bg_sid: int,
                  sources: list[str]) -> dict:
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    names = [f"{split}-{k:05d}-of-{shards:05d}.tfrecord" for k in range(shards)]
    tmp_dir = path / f".{split}.{os.getpid()}.shards.tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    writers = [tf.io.TFRecordWriter(str(tmp_dir / n)) for n in names]
    counts = np.zeros((shards, 3), np.int64)
    per_source = np.zeros(len(sources), np.int64)
    g = 0
    dim = None
    try:
        for x, y, s, w in _records(part_files, bg, bg_sid):
            dim = x.shape[1] if len(y) else dim
            rows = encode(x, y, s, w)
            for i in range(len(y)):
                k = (g + i) % shards
                writers[k].write(rows[i].tobytes())
                counts[k, y[i]] += 1
            per_source += np.bincount(s, minlength=len(sources))
            g += len(y)
    finally:
        for wr in writers:
            wr.close()
    entries = []
    for k, n in enumerate(names):
        f = tmp_dir / n
        entries.append({"file": n, "records": int(counts[k].sum()), "bytes": f.stat().st_size, "sha256": _sha256(f),
                        "classes": counts[k].tolist()})
    for n in names:
        os.replace(tmp_dir / n, path / n)
    tmp_dir.rmdir()
    return {"records": int(g), "dim": int(dim or 0), "shards": entries, "classes": counts.sum(0).tolist(),
            "sources": sources, "per_source": {s: int(c) for s, c in zip(sources, per_source)}}


def ensure_store(w: WindowConfig, dataset: Path, progress: bool = False, workers: int | None = None,
                 shards: dict | None = None, verify: str = "size") -> Store:
    """The data set's store for ``w``, built (or its killed build continued) first if needed."""

    dataset = Path(dataset)
    path = store_path(w, dataset)
    if (path / "manifest.json").is_file():
        return open_store(path, w, verify)
    path.mkdir(parents=True, exist_ok=True)
    with _build_lock(path):
        if (path / "manifest.json").is_file():   # built by another process while this one waited
            return open_store(path, w, verify)
        return _build_store(w, dataset, path, progress, workers, shards)


@contextlib.contextmanager
def _build_lock(path: Path):
    """Hold ``path/.build.lock`` (flock, exclusive) while building; say so when another process has it."""
    with open(path / ".build.lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"feature store {path}: another process is building it; waiting", file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build_store(w: WindowConfig, dataset: Path, path: Path, progress: bool, workers: int | None,
                 shards: dict | None) -> Store:
    for f in path.glob(".*.shards.tmp"):  # a build killed while writing shards
        shutil.rmtree(f, ignore_errors=True)
    t0 = time.time()
    audio_s = _audio_seconds(dataset)
    splits = {}
    for split in SPLITS:
        splits[split] = build_split_store(w, dataset, split, path, (shards or {}).get(split), workers, progress)
    dims = {s["dim"] for s in splits.values()}
    man = {"version": STORE_VERSION, "params": feature_params(w), "dataset": str(dataset.resolve()),
           "dim": max(dims), "record_bytes": HEADER_BYTES + 4 * max(dims), "splits": splits,
           "build_seconds": round(time.time() - t0, 2), "audio_seconds": audio_s}
    atomic_write_text(path / "manifest.json", json.dumps(man, indent=1) + "\n")
    shutil.rmtree(path / "parts", ignore_errors=True)
    return Store(path, man)


def _audio_seconds(dataset: Path) -> dict:
    """Seconds of clip audio per split (before copies and padding), from the audio file headers."""


    out: dict[str, float] = {}
    for c in read_manifest(dataset):
        try:
            info = sf.info(str(c.path))
        except Exception:  # an unreadable clip fails later, naming itself, when its windows are computed
            continue
        out[c.split] = out.get(c.split, 0.0) + info.frames / info.samplerate
    return {k: round(v, 2) for k, v in out.items()}


# ----------------------------------------------------------------------------- reading
def read_arrays(store: Store, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 [N, D], y int32 [N]) of a split in its canonical order (what was written)."""
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    sp = store.split(split)
    files = store.files(split)
    S, n, d = len(files), sp["records"], store.dim
    x = np.empty((n, d), np.float32)
    y = np.empty(n, np.int32)
    for k, f in enumerate(files):
        try:
            blocks = [tf.io.decode_raw(b, tf.float32).numpy().reshape(-1, 3 + d)
                      for b in tf.data.TFRecordDataset(f).batch(4096)]
        except (tf.errors.OpError, ValueError) as e:
            raise UserError(f"{f}: feature store shard unreadable ({type(e).__name__})") from None
        rows = np.concatenate(blocks) if blocks else np.zeros((0, 3 + d), np.float32)
        if len(rows) != sp["shards"][k]["records"]:
            raise UserError(f"{f}: feature store shard holds {len(rows)} records, manifest says {sp['shards'][k]['records']}")
        x[k::S] = rows[:, 3:]
        y[k::S] = rows[:, 0].view("<i4")
    return x, y


def split_arrays(w: WindowConfig, dataset: Path, split: str, progress: bool = False,
                 workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    return read_arrays(ensure_store(w, dataset, progress, workers), split)


def build_split(w: WindowConfig, dataset: Path, split: str, progress: bool = True,
                workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(windows float32 [N, ctx*bins], labels int32 [N]) for one split, read from the data set's
    feature store, which is built first if needed (clips in parallel, one process per core; the
    result does not depend on the number of workers)."""
    return split_arrays(w, Path(dataset), split, progress=progress, workers=workers)


def tf_dataset(store: Store, split: str, *, seed: int, shuffle: bool = True, shuffle_buffer: int = SHUFFLE_BUFFER,
               cycle_length: int = 4, shard_by: str = "file"):
    """tf.data of (x [D] float32 raw LFBE, label int32, source id int32, clip weight float32).

    Shards are interleaved (deterministic for a seed) and windows shuffled through a bounded
    buffer. ``shard_by``: "file" = under a multi-worker strategy each worker reads its own shards
    (tf.data AutoShardPolicy.FILE; needs at least as many shards as workers), "data" = every
    worker reads every shard and keeps its part of each global batch (the same global batches as
    one worker, more reading), "off" = no auto-sharding.
    """
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    files = store.files(split)
    d = store.dim
    ds = tf.data.Dataset.from_tensor_slices(files)
    ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f), cycle_length=min(cycle_length, len(files)),
                       block_length=1, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shuffle:
        ds = ds.shuffle(min(shuffle_buffer, max(1, store.count(split))), seed=seed, reshuffle_each_iteration=True)

    def parse(rec):
        r = tf.io.decode_raw(rec, tf.float32)
        r = tf.reshape(r, [3 + d])
        return r[3:], tf.bitcast(r[0], tf.int32), tf.bitcast(r[1], tf.int32), r[2]

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    opt = tf.data.Options()
    opt.deterministic = True
    policy = {"file": tf.data.experimental.AutoShardPolicy.FILE, "data": tf.data.experimental.AutoShardPolicy.DATA,
              "off": tf.data.experimental.AutoShardPolicy.OFF}
    if shard_by not in policy:
        raise UserError(f"--shard-by: '{shard_by}' (file, data or off)")
    opt.experimental_distribute.auto_shard_policy = policy[shard_by]
    return ds.with_options(opt)


# ----------------------------------------------------------------------------- training input
@dataclass
class FitInput:
    data: object  # tf.data.Dataset (one replica) or DatasetCreator (a strategy with several)
    steps: int  # steps per epoch
    store_windows: int
    extra_windows: int


def fit_input(w: WindowConfig, t: TrainConfig, run_dir: Path, train: tuple, n_classes: int, seed: int,
              shard_by: str = "file", spec=None):
    """The training input of ``train.fit``: the run's store (train split, normalized with the run's
    normalizer) plus the windows ``train`` holds beyond the store's (the hard negatives that
    ``recipe.with_hard_negatives`` appended, already normalized), shuffled together, one-hot,
    loss weights of the recipe, SpecAugment if on, repeated; ``steps`` batches make an epoch.
    None when the run has no store (``train`` then is all there is).

    The batch size is global: each of R replicas gets batch_size / R windows per step. Under a
    strategy the input is a DatasetCreator: each input pipeline (worker) reads its share, by
    shard files (shard_by="file") or by windows of one common stream (shard_by="data": the global
    batches equal a single worker's)."""
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    from training import distribute  # lazy: imports TensorFlow

    dpath = Path(run_dir) / "dataset.json"
    if not dpath.is_file():
        return None
    dataset = Path(json.loads(dpath.read_text())["dataset"])
    if not (store_path(w, dataset) / "manifest.json").is_file():
        return None
    store = open_store(store_path(w, dataset), w, verify="size")
    n_store = store.count("train")
    if len(train[0]) < n_store:
        return None
    norm = json.loads((Path(run_dir) / "normalizer.json").read_text())
    ctx = w.features.context_frames
    mean = tf.constant(np.tile(np.asarray(norm["mean"], np.float32), ctx))
    std = tf.constant(np.tile(np.asarray(norm["std"], np.float32), ctx))
    extra_x = np.ascontiguousarray(train[0][n_store:], np.float32)
    extra_y = np.asarray(train[1][n_store:], np.int32)
    batch = int(t.batch_size)
    nw = float(t.negative_weight)
    n_total = n_store + len(extra_y)
    steps = max(1, -(-n_total // batch))
    strat = distribute.strategy()
    replicas = strat.num_replicas_in_sync
    if batch % replicas:
        raise UserError(f"train.batch_size {batch} is not a multiple of the {replicas} replicas")
    if shard_by == "file" and replicas > 1 and len(store.files("train")) < distribute.num_workers():
        raise UserError(f"{store.path}: {len(store.files('train'))} train shards for {distribute.num_workers()} "
                        "workers (rebuild the store with --shards >= workers, or --shard-by data)")

    def make(pipelines: int, pipeline: int, per_batch: int):
        by_file = shard_by == "file" and pipelines > 1
        base = tf_dataset(store, "train", seed=seed, shard_by="off")
        if by_file:  # this pipeline's shard files only
            files = store.files("train")[pipeline::pipelines]
            base = tf_dataset(Store(store.path, _only_files(store, "train", files)), "train", seed=seed,
                              shard_by="off")
        base = base.map(lambda x, y, s, w: ((x - mean) / std, y), num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True).repeat()
        ds = base
        if len(extra_y):
            ex = tf.data.Dataset.from_tensor_slices((extra_x, extra_y))
            ex = ex.shuffle(len(extra_y), seed=seed + 1, reshuffle_each_iteration=True).repeat()
            if by_file:
                ex = ex.shard(pipelines, pipeline)
            ds = tf.data.Dataset.sample_from_datasets([base, ex], weights=[float(n_store), float(len(extra_y))],
                                                    seed=seed + 2)
        if pipelines > 1 and not by_file:  # every pipeline reads the common stream and keeps its windows
            ds = ds.shard(pipelines, pipeline)

        def label(x, y):
            return x, tf.one_hot(y, n_classes), tf.where(y == KEYWORD, 1.0, nw)

        ds = ds.map(label, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(per_batch)
        if spec is not None:
            ds = ds.map(spec, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        opt = tf.data.Options()
        opt.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        opt.deterministic = True
        return ds.with_options(opt).prefetch(2)

    if replicas == 1 and distribute.name() == "default":
        data = make(1, 0, batch)
    else:
        import tf_keras as keras  # lazy: heavy dependency, loaded only when this runs

        def fn(ctx_in):
            return make(ctx_in.num_input_pipelines, ctx_in.input_pipeline_id,
                        ctx_in.get_per_replica_batch_size(batch))

        data = keras.utils.experimental.DatasetCreator(fn)
    return FitInput(data, steps, n_store, len(extra_y))


def _only_files(store: Store, split: str, files: list[str]) -> dict:
    """A manifest copy whose split lists only ``files`` (one worker's shards)."""

    man = copy.deepcopy(store.manifest)
    keep = {Path(f).name for f in files}
    sp = man["splits"][split]
    sp["shards"] = [sh for sh in sp["shards"] if sh["file"] in keep]
    sp["records"] = sum(sh["records"] for sh in sp["shards"])
    return man


# ----------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training.feature_store", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="prepare the data of a config and build its store (resumes a killed build)")
    b.add_argument("--config", type=Path)
    b.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    b.add_argument("--out", type=Path, help="store folder (default <data set>/store/<key>)")
    b.add_argument("--shards", type=int, default=0, help="train shards (default 8; >= the number of workers)")
    b.add_argument("--workers", type=int, default=0, help="processes (default: one per core, at most 8)")
    c = sub.add_parser("check", help="verify every shard's size and sha256 (and the parameters with --config)")
    c.add_argument("store", type=Path)
    c.add_argument("--config", type=Path)
    c.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    return ap


def _cfg(a) -> WindowConfig:
    cfg = load_config(a.config)
    for item in a.set:
        if "=" not in item:
            raise UserError(f"--set {item}: expected section.key=value")
        k, v = item.split("=", 1)
        set_dotted(cfg, k.strip(), v.strip(), "--set")
    return WindowConfig.of(cfg.validate("command line"))


@cli_main
def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    if a.cmd == "build":
        w = _cfg(a)
        if a.shards < 0 or a.workers < 0:
            raise UserError("--shards/--workers must be >= 0")
        dataset = prepare_data(w.data, progress=sys.stderr.isatty())
        use_store(a.out)
        st = ensure_store(w, dataset, progress=sys.stderr.isatty(), workers=a.workers or None,
                          shards={"train": a.shards} if a.shards else None, verify="full")
        print(json.dumps({"store": str(st.path), **{s: st.count(s) for s in st.manifest["splits"]}}))
        return 0
    w = _cfg(a) if (a.config or a.set) else None
    st = open_store(a.store, w, verify="full")
    print(json.dumps({"store": str(st.path), "ok": True, **{s: st.count(s) for s in st.manifest["splits"]}}))
    return 0


if __name__ == "__main__":
    main()
