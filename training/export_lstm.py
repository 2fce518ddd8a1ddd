"""Export the streaming LSTM (training/lstm.py) to .tflite: float, int8 through TFLite's own integer LSTM,
or SUB8_LSTM_A4 for a QAT run with weights or activations below 8 bits (``training.export_lstm_a4``;
``--op`` / the run's ``quant.lstm_op`` choose, ``lstm_operator`` says how).

    python -m training.export_lstm RUN_DIR [-o model.tflite] [--float] [--op auto|int8|sub8] [--calibration-windows N]

The deployed graph takes ONE normalized LFBE frame per invocation (input [1, 1, bins]) and returns
the logits after it ([1, classes]); each LSTM layer is one UNIDIRECTIONAL_SEQUENCE_LSTM whose hidden
and cell states are variable tensors (inputs 18 and 19): the runtime keeps them between invocations
(tf.lite, TFLite Micro, the numpy reference, the firmware) and resets them to the start of a stream.
int8 (w8a8): post-training full-integer quantization with a representative data set of frame
sequences fed in stream order, so the state ranges are calibrated on running state; weights int8
per tensor, hidden state int8, cell state int16 with a power-of-two scale, gates Q3.12 -> Q0.15
(docs/formats.md, "Streaming LSTM"). A model whose LSTM has no state tensors is refused with one line.

This is the Keras-facing half of the LSTM export (it loads runs and sets up the converter); the
bytes-only half, the integer LSTM and its state check ``check_stateful``, is ``tflm_port.lstm``.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from basics.atomic import atomic_write_bytes
from basics.errors import UserError, cli_main
from tflm_port.lstm import check_stateful
from tflm_port.tflite_io import METADATA_NAME, load_model, save_model, set_metadata
from training import lstm_qat
from training.config import Config
from training.dataset import WindowConfig
from training.export_lstm_a4 import convert_lstm_a4, lstm_operator
from training.feature_store import build_split
from training.features import Normalizer
from training.lstm import step_model
from training.runs import load_trained_model, run_metadata

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def convert_lstm(model, frames: np.ndarray | None = None, int8: bool = True) -> bytes:
    """Keras LSTM model (build_lstm) -> .tflite bytes of the one-frame step model.

    ``frames``: calibration sequences [S, T, bins] of normalized features (int8 only); each sequence
    is fed frame by frame in order, the converter's calibrator carrying the state between frames.
    The project's one converter set-up besides ``training.qat.to_tflite``, which traces a stateless
    model at batch 1 and does not cover the state-carrying step model (docs/architecture.md)."""
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    sm = step_model(model, steps=1)
    conv = tf.lite.TFLiteConverter.from_keras_model(sm)
    if int8:
        if frames is None or len(frames) == 0:
            raise UserError("int8 LSTM export needs calibration frames")
        f = np.asarray(frames, np.float32)

        def rep():
            for seq in f:
                for t in range(seq.shape[0]):
                    yield [seq[None, t:t + 1]]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    data = bytes(conv.convert())
    if check_stateful(data, "converted LSTM") != len([l for l in sm.layers if "lstm" in l.name]):
        raise UserError("converter did not fuse every LSTM layer into UNIDIRECTIONAL_SEQUENCE_LSTM")
    return data


def with_metadata(data: bytes, metadata: dict) -> bytes:
    """``data`` (a converted .tflite) with the project's metadata added."""
    m = load_model(data, "converted LSTM")
    set_metadata(m, METADATA_NAME, dict(metadata))
    return save_model(m)


def convert_qat_lstm(qat_model, frames: np.ndarray, metadata: dict | None = None) -> bytes:
    """A QAT LSTM (training/lstm_qat.py) with 8-bit activations -> the int8 .tflite: its fake-quantized
    weights (k <= 8 bits, on their grid in int8 containers) in TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM; the
    converter calibrates the hidden-state scale on ``frames`` and fixes the cell (int16) and gate formats.
    A model with k-bit activations is refused with one line (``training.export_lstm_a4`` writes those)."""
    problem = lstm_qat.deployable_int8(qat_model)
    if problem:
        raise UserError(f"cannot export this LSTM as int8: {problem}")
    data = convert_lstm(lstm_qat.float_twin(qat_model), frames, int8=True)
    return with_metadata(data, metadata) if metadata else data


def calibration_frames(run_dir: Path, n: int, seed: int = 0) -> np.ndarray:
    """n normalized training windows of a run as frame sequences [n, T, bins]."""

    cfg = Config.from_dict(json.loads((run_dir / "config.json").read_text()), str(run_dir / "config.json"))
    dataset = Path(json.loads((run_dir / "dataset.json").read_text())["dataset"])
    norm = Normalizer(**json.loads((run_dir / "normalizer.json").read_text()))
    x, _ = build_split(WindowConfig.of(cfg), dataset, "train", progress=False)
    bins = cfg.features.num_mel_bins
    idx = np.random.default_rng(seed).choice(len(x), size=min(n, len(x)), replace=False)
    return norm(x[idx].reshape(len(idx), -1, bins)).astype(np.float32)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training.export_lstm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="finished `train.py --model lstm` run directory")
    ap.add_argument("-o", "--output", type=Path, help="output .tflite (default RUN_DIR/model-lstm-{int8,sub8,float}.tflite)")
    ap.add_argument("--float", action="store_true", help="float32 model (no quantization)")
    ap.add_argument("--op", choices=("auto", "int8", "sub8"),
                    help="QAT runs: TFLite's int8 LSTM or SUB8_LSTM_A4 (default: the run's quant.lstm_op, auto: w8a8 "
                         "-> int8, k-bit weights or activations -> SUB8_LSTM_A4)")
    ap.add_argument("--calibration-windows", type=int, default=200, help="training windows fed for calibration")
    return ap


@cli_main
def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    if not (a.run_dir / "model.keras").is_file():   # before the model is loaded: one quick line
        raise UserError(f"{a.run_dir}: no trained model (model.keras) - has training finished?")

    model = load_trained_model(a.run_dir)
    if not lstm_qat.is_lstm(model):
        raise UserError(f"{a.run_dir}: not an LSTM run (model '{model.name}')")
    # the run's labels, features and normalization ride along, so scoring, devbench and deploy can read the file
    meta, cfg = run_metadata(a.run_dir)
    meta = {**meta, "format": "subkws-tflite"}
    if lstm_qat.qlstm_layers(model):   # a QAT run: its quantized weights, in TFLite's int8 LSTM or SUB8_LSTM_A4
        if a.float:
            raise UserError(f"{a.run_dir}: a QAT LSTM run exports as an integer model only (drop --float)")
        op, why = lstm_operator(model, a.op or cfg.quant.lstm_op)
        if op is None:
            raise UserError(f"{a.run_dir}: no operator takes this LSTM: {why}")
        if op == "sub8":   # packed k-bit weights / k-bit activations: SUB8_LSTM_A4 (docs/formats.md section 13)
            data = convert_lstm_a4(model, {**meta, "preset": cfg.quant.preset}, name=str(a.run_dir))
        else:
            data = convert_qat_lstm(model, calibration_frames(a.run_dir, a.calibration_windows),
                                    {**meta, "preset": cfg.quant.preset})
    else:
        frames = None if a.float else calibration_frames(a.run_dir, a.calibration_windows)
        data = with_metadata(convert_lstm(model, frames, int8=not a.float),
                             {**meta, "mode": "float" if a.float else "int8 post-training"})
    suffix = "float" if a.float else "sub8" if b"SUB8_LSTM_A4" in data else "int8"
    out = a.output or a.run_dir / f"model-lstm-{suffix}.tflite"
    atomic_write_bytes(out, data)
    kind = "float32" if a.float else "int8 weights, int16 cell state"
    if b"SUB8_LSTM_A4" in data:
        kind = "SUB8_LSTM_A4: packed k-bit weights, k-bit activations"
    print(f"{out}: {len(data):,} bytes ({kind})")
    return 0


if __name__ == "__main__":
    main()
