"""Issue 15 items beyond tests/test_hostile_inputs.py: export of damaged DS-CNN/SUB8/LSTM models (4),
run directories, manifests and labels with damaged JSON (6, 7, 8), kill -9 (9: pool workers die with
their parent, the best checkpoint survives a resume), long recordings in bounded memory (10). Each
test fails on the behaviour the issue found (a traceback, a file written before the check, a worker
or best-state lost to a kill, a whole hour of audio in memory)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from basics.audio import save_wav
from basics.errors import UserError
from training import evaluate
from training.config import Config

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "firmware" / "fuzz" / "seeds" / "mlp_int8_frontend.tflite"


def _evaluate(argv, capsys):
    """(exit status, stderr) of ``python -m training.evaluate argv`` run in-process."""
    with pytest.raises(SystemExit) as e:
        evaluate.main([str(a) for a in argv])
    return e.value.code, capsys.readouterr().err


def _one_line(rc, err, needle):
    assert rc == 2 and err.count("\n") == 1 and err.startswith("error: ") and needle in err, err


@pytest.fixture()
def run_dir(tmp_path):
    """A run directory holding a deployable model.tflite, its config and normalization."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(SEED, run / "model.tflite")
    (run / "config.json").write_text(json.dumps(Config().to_dict()))
    bins = Config().features.num_mel_bins
    (run / "normalizer.json").write_text(json.dumps({"mean": [0.0] * bins, "std": [1.0] * bins}))
    return run


@pytest.fixture()
def clips(tmp_path):
    d = tmp_path / "pos"
    d.mkdir()
    save_wav(d / "a.wav", (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32))
    return d


# ---------------------------------------------------------------- 4. export checks before it writes

def _damage(kind):
    def edit(m):
        sg = m.subgraphs[0]
        if kind == "weights":  # the first weight matrix flattened to rank 1; packed SUB8 weights one byte short
            consts = [sg.tensors[i] for op in sg.operators for i in op.inputs[1:]
                      if i >= 0 and m.buffers[sg.tensors[i].buffer].data is not None]
            mats = [t for t in consts if len(t.shape) > 1]
            if mats:
                mats[0].shape = np.array([int(np.prod(mats[0].shape))], np.int32)
            else:
                t = consts[0]
                t.shape = np.array([t.shape[0] - 1], np.int32)
                m.buffers[t.buffer].data = m.buffers[t.buffer].data[:-1]
        elif kind == "output_shape":
            sg.tensors[sg.outputs[0]].shape = np.array([1, 7], np.int32)
        elif kind == "huge_input":
            sg.tensors[sg.inputs[0]].shape = np.array([1, 2**31 - 1], np.int32)
    return edit


@pytest.mark.parametrize("seed", ["tiny_dscnn_softmax.tflite", "sub8_layout0.tflite", "sub8_layout2.tflite",
                                  "lstm_int8.tflite"])
@pytest.mark.parametrize("kind", ["weights", "output_shape", "huge_input"])
def test_export_of_damaged_models_writes_nothing(tmp_path, capsys, seed, kind):
    """The issue: damaged DS-CNN and SUB8 models ended in ValueError/IndexError/struct.error after the
    .h/.c files were written. Now one line and an empty (or no) output folder."""
    from basics.errors import cli_main
    from tflm_port import export
    from tflm_port.tflite_io import load_model, save_model

    m = load_model((SEED.parent / seed).read_bytes())
    _damage(kind)(m)
    path = tmp_path / "bad.tflite"
    path.write_bytes(save_model(m))
    with pytest.raises(SystemExit) as e:
        cli_main(export.main)([str(path), str(tmp_path / "out"), "--vectors", "2"])
    _one_line(e.value.code, capsys.readouterr().err, "bad.tflite")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


# ---------------------------------------------------------------- 6. corrupt run files

@pytest.mark.parametrize("name, text, needle", [
    ("config.json", "{not json", "corrupt run config"),
    ("config.json", "[1, 2]", "expected a JSON object"),
    ("normalizer.json", "{nope", "corrupt feature normalization"),
    ("normalizer.json", '{"mean": [0], "std": [1]}', "normalization must hold"),
])
def test_evaluate_run_with_corrupt_files(run_dir, clips, capsys, name, text, needle):
    (run_dir / name).write_text(text)
    _one_line(*_evaluate([run_dir, "--positives", clips, "--threshold", "0.5"], capsys), needle)


@pytest.mark.parametrize("text, needle", [
    ("{bad", "corrupt run report"), ("[1]", "expected a JSON object"), ('{"stream": 3}', "no 'stream' object"),
    ('{"stream": {"threshold_at_1fah": "x"}}', "must be a number in [0, 1]"),
    ('{"stream": {"threshold_at_1fah": 7}}', "must be a number in [0, 1]"),
])
def test_evaluate_threshold_from_a_corrupt_report(run_dir, clips, capsys, text, needle):
    """--positives without --threshold reads the run's report.json (was: JSONDecodeError/TypeError)."""
    (run_dir / "report.json").write_text(text)
    _one_line(*_evaluate([run_dir, "--positives", clips], capsys), needle)


def test_evaluate_threshold_from_a_good_report(run_dir, clips, capsys):
    (run_dir / "report.json").write_text('{"stream": {"threshold_at_1fah": 0.25}}')
    with pytest.raises(SystemExit) as e:
        evaluate.main([str(run_dir), "--positives", str(clips)])
    assert e.value.code == 0
    res = json.loads(capsys.readouterr().out)
    assert res["models"]["run"]["threshold"] == 0.25


@pytest.mark.parametrize("manifest, needle", [
    ({"smoothing_frames": "x"}, "smoothing_frames must be an integer"),
    ({"smoothing_frames": 0}, "smoothing_frames must be an integer"),
    ({"smoothing_frames": 2.5}, "smoothing_frames must be an integer"),
    ({"refractory_s": None}, "refractory_s must be a number"),
    ({"name": ["a"]}, "'name' must be a string"),
    ({"thresholds": [0.5]}, "'thresholds' must be an object"),
    ({"thresholds": {"fa_per_hour_1": "high"}}, "must be a number in [0, 1]"),
])
def test_manifest_of_any_shape(tmp_path, clips, capsys, manifest, needle):
    """A model manifest beside the .tflite with values of the wrong type or range: one line
    (was: ValueError / TypeError from int(), float() or a dict lookup)."""
    shutil.copy(SEED, tmp_path / "m.tflite")
    (tmp_path / "m.json").write_text(json.dumps({"model": "m.tflite", **manifest}))
    _one_line(*_evaluate([tmp_path / "m.tflite", "--positives", clips], capsys), needle)


def test_train_run_dir_with_corrupt_config(tmp_path):
    from training.train import check_run_dir

    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(UserError, match="corrupt run config"):
        check_run_dir(tmp_path, Config())
    (tmp_path / "config.json").write_text("[1]")
    with pytest.raises(UserError, match="expected a JSON object"):
        check_run_dir(tmp_path, Config())


def test_corrupt_normalizer_refused_before_the_data_work(tmp_path, monkeypatch):
    """A (float) run's normalizer.json is read before the windows are built, so a corrupt one is one
    line at once instead of a JSONDecodeError after data preparation."""
    from training import train

    def no_data_work(*a, **k):
        raise AssertionError("the data work started before normalizer.json was checked")

    monkeypatch.setattr(train, "build_split", no_data_work)
    (tmp_path / "normalizer.json").write_text("{nope")
    with pytest.raises(UserError, match="corrupt feature normalization"):
        train.load_windows(Config(), tmp_path / "data", tmp_path, progress=False)
    (tmp_path / "normalizer.json").write_text('{"mean": [NaN], "std": [1]}')
    with pytest.raises(UserError, match="normalization must hold"):
        train.load_windows(Config(), tmp_path / "data", tmp_path, progress=False)


# ---------------------------------------------------------------- 7, 8. options, values and labels

@pytest.mark.parametrize("args", [["--epochs", "-3"], ["--epochs", "0"], ["--set", "train.batch_size=0"],
                                  ["--set", "quant.stage1_epochs=-1"], ["--set", "model.hidden_units=0"],
                                  ["--set", "train.learning_rate=nan"], ["--layer-bits", "8,x,4"]])
def test_bad_training_value_leaves_no_run_directory(tmp_path, capsys, args):
    """A bad value is one line before any work, and the run directory is not created, so the corrected
    command is not refused as "a different config" (the issue: the bad config was kept)."""
    from training import cli

    with pytest.raises(SystemExit) as e:
        cli.main(args + ["--run-dir", str(tmp_path / "run")])
    _one_line(e.value.code, capsys.readouterr().err, "error: --")
    assert not (tmp_path / "run").exists()


def test_threshold_nan_is_refused(clips, capsys):
    _one_line(*_evaluate([SEED, "--positives", clips, "--threshold", "nan"], capsys), "--threshold must be")


@pytest.mark.parametrize("labels", [
    '{"keywords": [{"start_s": NaN, "end_s": 1}]}', '{"keywords": [{"start_s": 2, "end_s": 1}]}',
    '{"keywords": [{"start_s": -1, "end_s": Infinity}]}', '{"keywords": 5}', "[1]",
])
def test_stream_labels_of_any_shape(tmp_path, capsys, labels):
    wav = tmp_path / "s.wav"
    save_wav(wav, np.zeros(16000, np.float32))
    (tmp_path / "l.json").write_text(labels)
    _one_line(*_evaluate([SEED, "--stream", wav, "--labels", tmp_path / "l.json"], capsys), "not a stream label file")


def test_labels_past_the_end_warn(tmp_path, capsys):
    wav = tmp_path / "s.wav"
    save_wav(wav, np.zeros(3 * 16000, np.float32))
    (tmp_path / "l.json").write_text('{"keywords": [{"start_s": 10, "end_s": 11}]}')
    with pytest.raises(SystemExit) as e:
        evaluate.main([str(SEED), "--stream", str(wav), "--labels", str(tmp_path / "l.json")])
    err = capsys.readouterr().err
    assert e.value.code == 0 and "labels run past the end" in err, err


# ---------------------------------------------------------------- 9. kill -9

_POOL = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context, resource_tracker
from {module} import {init} as init

def job(i):
    time.sleep(120)

if __name__ == "__main__":
    ex = ProcessPoolExecutor(2, mp_context=get_context("spawn"), initializer=init, initargs={args})
    futs = [ex.submit(job, i) for i in range(2)]
    while len(ex._processes) < 2:
        time.sleep(0.05)
    time.sleep(1.0)  # the initializers have run
    print(" ".join(str(p) for p in ex._processes), resource_tracker._resource_tracker._pid, flush=True)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_pool_workers_die_with_a_killed_parent(tmp_path):
    """kill -9 of a process with a spawn pool (as the feature extraction runs it): its workers and the
    resource tracker are gone within seconds (the issue found them alive minutes later)."""
    script = tmp_path / "pool.py"
    script.write_text(_POOL.format(module="basics.procs", init="die_with_parent", args="()"))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        pids = [int(x) for x in p.stdout.readline().split()]
        assert len(pids) == 3 and all(_alive(q) for q in pids), pids
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        t0 = time.time()
        while any(_alive(q) for q in pids) and time.time() - t0 < 15:
            time.sleep(0.1)
        left = [q for q in pids if _alive(q)]
        for q in left:
            os.kill(q, signal.SIGKILL)
        assert not left, f"processes alive after their parent's kill -9: {left}"
    finally:
        p.kill()


def test_every_pool_initializer_asks_to_die_with_its_parent(monkeypatch):
    """The project's process pools (feature extraction, TTS, the negative stream) call die_with_parent
    first in their initializer."""
    from bench import negstream
    from data_scripts import tts
    from training import dataset

    class Called(Exception):
        pass

    def called():
        raise Called

    for mod, init, args in ((dataset, "_worker_init", (dataset.WindowConfig.of(Config()), "d")), (tts, "_tts_init", ("espeak", "", "r")),
                            (negstream, "_init", ("espeak", "", "r"))):
        monkeypatch.setattr(mod, "die_with_parent", called)
        with pytest.raises(Called):
            getattr(mod, init)(*args)


def test_best_checkpoint_survives_a_resume(tmp_path):
    """The best val_loss so far is kept beside best.weights.h5: after a kill -9 and a resume, a worse
    epoch does not overwrite a better earlier one (Keras' ModelCheckpoint alone starts over at +inf)."""
    import tf_keras as keras

    from training.checkpoints import best_val_loss_callbacks

    best = tmp_path / "best.weights.h5"
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])

    def epoch(cbs, epoch, val_loss, value):
        model.layers[0].kernel.assign(np.full((3, 1), value, np.float32))
        for cb in cbs:
            cb.set_model(model)
            cb.on_epoch_end(epoch, {"val_loss": val_loss})

    first = best_val_loss_callbacks(best)
    epoch(first, 0, 0.9, 1.0)
    epoch(first, 1, 0.4, 2.0)  # the best epoch
    epoch(first, 2, 0.6, 3.0)
    # killed here; the resumed run makes new callbacks
    resumed = best_val_loss_callbacks(best)
    epoch(resumed, 3, 0.5, 4.0)  # worse than 0.4: must not replace the best weights
    model.load_weights(str(best))
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), np.full((3, 1), 2.0, np.float32))
    epoch(resumed, 4, 0.3, 5.0)  # better: replaces them
    model.load_weights(str(best))
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), np.full((3, 1), 5.0, np.float32))
    assert json.loads((tmp_path / "best.val_loss.json").read_text())["val_loss"] == 0.3


# ---------------------------------------------------------------- 10. long recordings in bounded memory

def _long_wav(path: Path, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * 16000)) / 16000.0
    x = (rng.standard_normal(len(t)) * 0.01 + ((t % 7.0) < 0.5) * 0.4 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    x[int(50.2 * 16000):int(50.6 * 16000)] *= 2.0  # the loudest part: a keyword take keeps it
    save_wav(path, x)
    return x


def test_long_recording_imported_block_by_block_gives_the_same_pieces(tmp_path, monkeypatch):
    """A negative recording longer than LONG_FILE_S is cut into the same pieces (byte for byte) as
    the in-memory path cuts, and a long keyword take keeps its loudest MAX_CLIP_S."""
    from data_scripts import speech_commands as sc
    from basics.audio import load_audio
    from data_scripts.common import loudest_window

    monkeypatch.setattr(sc, "LONG_FILE_S", 20.0)
    src = tmp_path / "long.wav"
    _long_wav(src, 47.3)
    x = load_audio(src)  # as stored (PCM16)
    blocks = sc._import_clip(src, tmp_path / "blocks" / "n.wav", keyword=False)
    monkeypatch.setattr(sc, "LONG_FILE_S", 1e9)
    whole = sc._import_clip(src, tmp_path / "whole" / "n.wav", keyword=False)
    assert [p.name for p, _ in blocks] == [p.name for p, _ in whole] and len(blocks) > 5
    assert all(a.read_bytes() == b.read_bytes() for (a, _), (b, _) in zip(blocks, whole))
    monkeypatch.setattr(sc, "LONG_FILE_S", 20.0)
    (kw, _), = sc._import_clip(src, tmp_path / "blocks" / "k.wav", keyword=True)
    y, best = load_audio(kw), loudest_window(x, int(sc.MAX_CLIP_S * 16000))
    assert len(y) == len(best) and np.sum(y.astype(np.float64) ** 2) >= 0.99 * np.sum(best.astype(np.float64) ** 2)


def test_long_recording_import_memory_is_bounded(tmp_path):
    """Importing a 3-minute negative recording allocates a fraction of the file's samples (the
    in-memory path held the whole file, so an hour took over a gigabyte)."""
    import tracemalloc

    from data_scripts import speech_commands as sc

    src = tmp_path / "long.wav"
    n = len(_long_wav(src, 180.0))
    tracemalloc.start()
    try:
        pieces = sc._import_clip(src, tmp_path / "out" / "n.wav", keyword=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(pieces) > 10
    assert peak < 0.3 * 4 * n, f"peak {peak / 1e6:.1f} MB for {4 * n / 1e6:.1f} MB of float32 samples"


@pytest.mark.parametrize("thresholds, needle", [
    ([0.5], "'thresholds' must be an object"), ("high", "'thresholds' must be an object"),
    ({"fa_per_hour_1": "x"}, "is not a number"), ({"fa_per_hour_1": 7}, "must be in [0, 1]"),
])
def test_deploy_manifest_thresholds_of_any_shape(tmp_path, capsys, thresholds, needle):
    """deploy of a shipped model whose manifest's thresholds are not an object of numbers: one line
    before any firmware is built (was: AttributeError from a list's .get)."""
    from basics.errors import cli_main
    from tflm_port import deploy

    shutil.copy(SEED, tmp_path / "m.tflite")
    (tmp_path / "m.json").write_text(json.dumps({"model": "m.tflite", "thresholds": thresholds}))
    wav = tmp_path / "a.wav"
    save_wav(wav, np.zeros(16000, np.float32))
    with pytest.raises(SystemExit) as e:
        cli_main(deploy.main)([str(tmp_path / "m.json"), "--board", "mps2-an386", "--audio", str(wav)])
    _one_line(e.value.code, capsys.readouterr().err, needle)


@pytest.mark.parametrize("text", [None, "{bad", '{"dataset": 5}', "[]"])
def test_evaluate_run_with_a_missing_or_corrupt_dataset_file(run_dir, capsys, text):
    """``evaluate RUN_DIR`` scores the run's own test data, named in dataset.json (was: FileNotFoundError,
    JSONDecodeError or TypeError)."""
    if text is not None:
        (run_dir / "dataset.json").write_text(text)
    _one_line(*_evaluate([run_dir], capsys), "run data set file")


def test_qat_on_a_float_run_with_a_corrupt_dataset_file_is_one_line(tmp_path):
    """A float run whose dataset.json is damaged: --float-run ends in one line, not a traceback."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    frun = tmp_path / "float"
    frun.mkdir()
    from training.config import Config

    cfg = Config()
    (frun / "config.json").write_text(json.dumps(cfg.to_dict()))
    (frun / "model.keras").write_bytes(b"not used before the check")
    (frun / "normalizer.json").write_text("{}")
    (frun / "labels.json").write_text('["_silence_", "_unknown_", "alexa"]')
    (frun / "dataset.json").write_text("{ not json")
    r = subprocess.run([sys.executable, str(root / "training" / "train.py"), "--weight-bits", "4", "--float-run",
                        str(frun), "--run-dir", str(tmp_path / "q"), "--no-progress"], capture_output=True, text=True,
                       cwd=root, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "dataset.json" in r.stderr, r.stderr[-1500:]
