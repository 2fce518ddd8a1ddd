"""Issue 15 "Found" items outside training/evaluate.py, dataset.py, train.py: each input that used to
end in a traceback (or an abort, or an out-of-memory kill) now ends in a result or one UserError."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from basics.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "firmware" / "fuzz" / "seeds"


def _cli(main, argv, capsys):
    """(exit status, stderr) of a cli_main entry point run in-process."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    return e.value.code, err


def _one_error_line(rc, err):
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err


# ---------------------------------------------------------------- 1. file names that are not UTF-8

def test_recording_with_non_utf8_name(tmp_path):
    from data_scripts.speech_commands import prepare_folder
    from basics.audio import load_audio, save_wav
    from data_scripts.config import DataConfig

    rec = tmp_path / "rec"
    x = (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32)
    for d in ("alexa", "other"):
        (rec / d).mkdir(parents=True)
        save_wav(rec / d / "a.wav", x)
    bad = os.path.join(os.fsencode(rec / "alexa"), b"\xffclip.wav")
    os.rename(os.fsencode(rec / "alexa" / "a.wav"), bad)
    p = Path(os.fsdecode(bad))
    assert load_audio(p).shape == (16000,)  # was "not a readable audio file"
    ds = prepare_folder(DataConfig(source="folder", keyword="alexa", folder=str(rec), root=str(tmp_path / "d"),
                                   stream_minutes=0.05), progress=False)
    manifest = (ds / "manifest.csv").read_text(encoding="utf-8")  # was UnicodeEncodeError
    assert "clips/alexa/_clip.wav" in manifest


# ---------------------------------------------------------------- 2. names that are not UTF-8

def _flip_in(data: bytes, needle: bytes) -> bytes:
    i = data.index(needle)
    return data[:i] + b"\xff" + data[i + 1:]


@pytest.mark.parametrize("needle", [b"SUB8_FULLY_CONNECTED", b"subkws"])
def test_names_that_are_not_utf8(tmp_path, capsys, needle):
    from tflm_port import convert, export, model_inspect
    from tflm_port.firmware_runner import model_metadata

    data = _flip_in((SEEDS / "sub8_layout0.tflite").read_bytes(), needle)
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    d = model_inspect.describe(data, "m.tflite")  # was UnicodeDecodeError
    assert "\ufffd" in json.dumps(d, ensure_ascii=False)
    rc, err = _cli(convert.main, [str(path), str(tmp_path / "o.tflite"), "--bits", "1,2,3,4,5,6,7,8"], capsys)
    assert rc in (0, 2) and "Traceback" not in err
    rc, err = _cli(export.main, [str(path), str(tmp_path / "out"), "--vectors", "2"], capsys)
    assert rc in (0, 2) and "Traceback" not in err
    with pytest.raises(UserError):
        model_metadata(data, "m.tflite")


# ---------------------------------------------------------------- 3. an operator without inputs

def _edited(seed: str, edit) -> bytes:
    from tflm_port.tflite_io import load_model, save_model

    m = load_model((SEEDS / seed).read_bytes())
    edit(m)
    return save_model(m)


def test_operator_without_inputs_vector():
    from tflm_port.model_inspect import describe
    from tflm_port.reference import Reference

    def drop(m):
        m.subgraphs[0].operators[0].inputs = None

    data = _edited("mlp_int8_frontend.tflite", drop)
    d = describe(data, "m.tflite")  # was TypeError
    assert d["operators"][0]["inputs"] == []
    with pytest.raises(UserError, match="operator 0"):
        Reference.from_bytes(data, "m.tflite")


# ---------------------------------------------------------------- 4. export / convert command lines

def test_export_writes_nothing_for_a_damaged_model(tmp_path, capsys):
    from tflm_port import export

    def damage(m):  # weights of a rank the reference cannot use
        sg = m.subgraphs[0]
        w = sg.tensors[sg.operators[0].inputs[1]]
        w.shape = [int(np.prod(w.shape))]

    path = tmp_path / "bad.tflite"
    path.write_bytes(_edited("mlp_int8_frontend.tflite", damage))
    rc, err = _cli(export.main, [str(path), str(tmp_path / "out")], capsys)
    _one_error_line(rc, err)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_huge_input_shape_is_refused_not_allocated(tmp_path, capsys):
    from tflm_port import export

    def huge(m):
        sg = m.subgraphs[0]
        sg.tensors[sg.inputs[0]].shape = [1, 2**31 - 1]

    path = tmp_path / "huge.tflite"
    path.write_bytes(_edited("mlp_int8_frontend.tflite", huge))
    rc, err = _cli(export.main, [str(path), str(tmp_path / "out")], capsys)
    _one_error_line(rc, err)
    assert "limit" in err


def test_export_and_convert_options(tmp_path, capsys):
    from tflm_port import convert, export

    model = str(SEEDS / "mlp_int8_frontend.tflite")
    afile = tmp_path / "file"
    afile.write_text("x")
    _one_error_line(*_cli(export.main, [model, str(afile)], capsys))
    _one_error_line(*_cli(export.main, [model, str(tmp_path / "o"), "--vectors", "-5"], capsys))
    meta = tmp_path / "meta.json"
    meta.write_text("[1, 2]")
    _one_error_line(*_cli(convert.main, [model, str(tmp_path / "c.tflite"), "--bits", "8,8", "--metadata", str(meta)],
                          capsys))
    rc, err = _cli(export.main, [model, str(tmp_path / "ok"), "--vectors", "3"], capsys)
    assert rc == 0 and len(list((tmp_path / "ok").iterdir())) == 3


# ---------------------------------------------------------------- 5, 7. configuration values

@pytest.mark.parametrize("key, value", [
    ("quant.layer_bits", "8,x,4"), ("train.epochs", "-3"), ("train.epochs", "0"), ("train.batch_size", "0"),
    ("quant.stage1_epochs", "-1"), ("model.hidden_units", "0"), ("train.learning_rate", "nan"),
    ("train.learning_rate", "inf"), ("train.epochs", "1e400"), ("quant.layer_bits", "8,9"),
    ("model.name", "resnet"), ("eval.smoothing_frames", "0"), ("data.stream_minutes", "-1"),
])
def test_config_values_are_validated_when_set(key, value):
    from training.config import Config, set_dotted

    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        set_dotted(Config(), key, value, "--set")


def test_config_file_is_validated_at_load(tmp_path):
    from training.config import Config, load_config

    p = tmp_path / "c.yaml"
    p.write_text("train:\n  epochs: -3\n")
    with pytest.raises(UserError, match="train.epochs"):
        load_config(p)
    p.write_text("data:\n  snr_db_min: 40\n  snr_db_max: 10\n")
    with pytest.raises(UserError, match="snr_db_min"):
        load_config(p)
    with pytest.raises(UserError, match="learning_rate"):
        Config.from_dict({"train": {"learning_rate": float("nan")}})
    p.write_bytes(b"\xff\xfe bad")
    with pytest.raises(UserError):
        load_config(p)


# ---------------------------------------------------------------- 6, 9. runs: corrupt JSON, resumption

def test_corrupt_float_run_config(tmp_path):
    from training.config import Config
    from training.qat_train import ensure_float_run

    frun = tmp_path / "float"
    frun.mkdir()
    (frun / "config.json").write_text("{not json")
    (frun / "model.keras").write_text("")
    cfg = Config()
    cfg.quant.float_run = str(frun)
    with pytest.raises(UserError, match="corrupt float run config"):
        ensure_float_run(cfg, tmp_path / "q", progress=False)


def test_finished_stage_is_not_trained_again(tmp_path):
    """kill -9 in QAT stage 2 must not re-run stage 1: stage 1's weights are kept when it finishes."""
    import tf_keras as keras

    from training.qat_train import finished_stage

    calls = []

    def build():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])

    def train(m):
        calls.append(1)
        m.layers[0].kernel.assign(np.full((4, 2), 0.5, np.float32))

    m1 = finished_stage(tmp_path, "stage1", build, train)
    # the process dies in stage 2; the next start:
    m2 = finished_stage(tmp_path, "stage1", build, train)
    assert calls == [1]
    np.testing.assert_array_equal(m2.layers[0].kernel.numpy(), m1.layers[0].kernel.numpy())
    (tmp_path / "checkpoints" / "stage1" / "final.weights.h5").write_bytes(b"garbage")
    with pytest.raises(UserError, match="delete it"):
        finished_stage(tmp_path, "stage1", build, train)


def test_stale_temporaries_are_cleaned(tmp_path):
    """A writer killed with kill -9 leaves its .tmp folder; the next start removes it, but never the
    temporary of a writer that is still running."""
    import subprocess
    import sys

    from basics.atomic import atomic_path, clean_stale_temporaries

    code = ("import os, signal, sys; from basics.atomic import atomic_path; "
            "c = atomic_path(sys.argv[1]); t = c.__enter__(); t.write_text('half'); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.tflite")], cwd=ROOT)
    assert r.returncode == -9
    stale = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(stale) == 1
    live = atomic_path(tmp_path / "other.bin")
    live.__enter__()  # this process is alive: its temporary stays
    assert clean_stale_temporaries(tmp_path) == stale
    assert [p.name.startswith(".other.bin.") for p in tmp_path.iterdir()] == [True]


def test_deploy_run_files_and_metadata_of_any_shape(tmp_path):
    from tflm_port.firmware_runner import deployable_model, model_metadata
    from tflm_port.tflite_io import get_metadata, load_model, save_model, set_metadata

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.tflite").write_bytes((SEEDS / "mlp_int8_frontend.tflite").read_bytes())
    (run / "config.json").write_text("{broken")
    with pytest.raises(UserError, match="corrupt run config"):
        deployable_model(run)
    (run / "config.json").write_text("{}")
    (run / "report.json").write_text("[1]")
    with pytest.raises(UserError, match="corrupt run report"):
        deployable_model(run)
    data = (SEEDS / "mlp_int8_frontend.tflite").read_bytes()
    for key, value in (("labels", ["a"]), ("features", [1, 2]), ("labels", "abc")):
        m = load_model(data)
        md = get_metadata(m)
        md[key] = value
        set_metadata(m, "subkws", md)
        with pytest.raises(UserError):
            model_metadata(save_model(m), "m.tflite")
