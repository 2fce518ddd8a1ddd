"""A finished run directory, opened for scoring: the trained Keras model (saved and loaded here),
the deployable model.tflite, and the scorers that turn normalized windows into posteriors.

``load_run`` is the one way to open a run: its model.tflite through the bit-exact integer reference
by default (what ships), the Keras model only on request (``keras=True``) or for float runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from basics.atomic import atomic_path
from basics.errors import UserError, read_json
from tflm_port.reference import Reference
from training.config import Config, ExportConfig
from training.features import Normalizer

Scorer = Callable[[np.ndarray], np.ndarray]  # normalized windows [N, D] -> posteriors [N, C]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def save_model(model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(str(tmp))


def load_trained_model(run_dir: Path):
    import tf_keras as keras  # lazy: TensorFlow only when a Keras model is really loaded

    run_dir = Path(run_dir)
    path = run_dir / "model.keras"
    if not path.is_file():
        raise UserError(f"{run_dir}: no trained model (model.keras) – has training finished?")
    try:
        if (run_dir / "qat.json").is_file():   # tfmot's layers do not load back: rebuild, then read the weights
            from training.qat_reload import load_qat_model  # lazy: imports TensorFlow and the QAT builders

            return load_qat_model(run_dir, path)
        return keras.models.load_model(str(path), compile=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot load model ({str(e).splitlines()[0]})") from None


def qat_scope():
    """Keras custom-object scope that can load QAT models (tfmot wrappers and our quantizers)."""
    import tensorflow_model_optimization as tfmot  # lazy, as above

    from training import qat  # lazy: imports TensorFlow

    return tfmot.quantization.keras.quantize_scope(qat.custom_objects())


def keras_scorer(model) -> Scorer:
    if any(type(getattr(layer, "layer", layer)).__name__ == "QuantLSTM" for layer in getattr(model, "layers", ())):
        from training import lstm_qat  # lazy: only QAT LSTM runs need it (imports TensorFlow)
        from training.lstm import stream_scorer  # lazy: as below

        return stream_scorer(model, lstm_qat.QuantStreamState(model))   # the QAT LSTM hop by hop, quantized
    if any(type(layer).__name__ == "LSTM" for layer in getattr(model, "layers", ())):  # streaming LSTM (issue 12)
        from training.lstm import stream_scorer  # lazy: only LSTM runs need it

        return stream_scorer(model)

    def f(x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros((0, model.output_shape[-1]))
        return softmax(np.asarray(model.predict(x, batch_size=4096, verbose=0), dtype=np.float64))

    return f


def tflite_scorer(model: bytes | str | Path) -> Scorer:
    """Score windows with a converted .tflite through the bit-exact integer reference."""
    ref = Reference.from_bytes(model) if isinstance(model, (bytes, bytearray)) else Reference.from_file(model)
    if any(hasattr(op, "reset") for op in ref.ops):  # stateful (the streaming LSTM): one frame per hop
        from tflm_port.lstm import reference_stream_scorer  # lazy: only LSTM models need it

        return reference_stream_scorer(ref)

    def f(x: np.ndarray) -> np.ndarray:
        return ref.posteriors(x)

    return f


def run_dataset(run_dir: Path) -> Path:
    """The data set folder a run directory was trained on (its dataset.json); one UserError line when
    the file is missing, corrupt or names no folder."""
    p = Path(run_dir) / "dataset.json"
    d = read_json(p, "run data set file", mapping=True)
    if not isinstance(d.get("dataset"), str) or not d["dataset"]:
        raise UserError(f"{p}: corrupt run data set file (no 'dataset' folder name)")
    return Path(d["dataset"])


def open_run(run_dir: Path) -> tuple[Config, Normalizer]:
    """(config, feature normalization) of a run directory, checked (one UserError line otherwise)."""
    run_dir = Path(run_dir)
    for f in ("config.json", "normalizer.json"):
        if not (run_dir / f).is_file():
            raise UserError(f"{run_dir}: not a run directory (no {f})")
    cfg = Config.from_dict(read_json(run_dir / "config.json", "run config", mapping=True), str(run_dir / "config.json"))
    norm = Normalizer.from_dict(read_json(run_dir / "normalizer.json", "feature normalization"),
                                cfg.features.num_mel_bins, str(run_dir / "normalizer.json"))
    return cfg, norm


def load_run(run_dir: Path, keras: bool = False):
    """(cfg, normalizer, scorer) of a finished run directory: its deployable model.tflite scored by
    the integer reference when there is one (QAT runs), else (or with keras=True) the Keras model.
    The one way to open a run for scoring (evaluate, scoring.load_detector, the benchmarks)."""
    run_dir = Path(run_dir)
    cfg, norm = open_run(run_dir)
    if (run_dir / "model.tflite").is_file() and not keras:
        return cfg, norm, tflite_scorer(run_dir / "model.tflite")
    return cfg, norm, keras_scorer(load_trained_model(run_dir))


def tflite_metadata(cfg: ExportConfig, normalization: dict, labels: list) -> dict:
    """The "subkws" metadata every exported .tflite carries: labels, LFBE and context parameters,
    normalization, model name (what scoring, deploy and the firmware front end read)."""
    f = cfg.features
    return {"labels": labels,
            "features": {"sample_rate": f.sample_rate, "window_ms": f.window_ms, "hop_ms": f.hop_ms,
                         "num_mel_bins": f.num_mel_bins, "context_frames": f.context_frames,
                         "context_stride": f.context_stride, "lfbe": "training/features.py",
                         "normalization": normalization},
            "model": cfg.model.name}


def run_metadata(run_dir: Path) -> tuple[dict, Config]:
    """(metadata for a .tflite, Config) of a run directory: what scoring, deploy and the firmware front end
    read from every model the project writes."""
    cfg = Config.from_dict(read_json(run_dir / "config.json", "run config"), str(run_dir / "config.json"))
    norm = read_json(run_dir / "normalizer.json", "normalizer")
    labels = read_json(run_dir / "labels.json", "label file")
    return tflite_metadata(ExportConfig.of(cfg), norm, labels), cfg
