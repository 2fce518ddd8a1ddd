"""Open a finished QAT run's model.keras again: rebuild the model as training built it, then read the weights.

``keras.models.load_model`` cannot read a tfmot QAT model back. tfmot's ``QuantizeLayer.build`` never marks
the layer built, so loading builds it twice (5 variables where the file holds 3); a ``QuantizeWrapperV2``
rebuilt from its config tracks its kernel once where the trained one tracked it twice (6 variables where
the file holds 8). The .keras weight file stores each layer's variables by position, so the only model
that reads it back exactly is one built by the same code in the same order: ``load_qat_model`` builds the
run's float model from its config.json (``models.build_model``, classes from labels.json), turns it into
the stage-2 QAT model (``qat.make_qat_model`` or ``lstm_qat.make_qat_lstm``, the run's ``quant`` section:
what ``qat_train`` saved, for both ``quant.stages``) and loads the file with ``load_weights``. A count or
shape mismatch (a file from another config) is one UserError line. tests/test_qat_reload.py saves QAT
models and checks the reloaded ones give the same outputs bit for bit.
"""
from __future__ import annotations

from pathlib import Path

from basics.errors import UserError, read_json
from training import lstm_qat, qat
from training.config import Config
from training.models import build_model


def load_qat_model(run_dir: Path, path: Path | None = None):
    """The QAT model saved in ``run_dir`` (``path``: its model.keras by default), weights loaded."""
    run_dir = Path(run_dir)
    path = Path(path) if path is not None else run_dir / "model.keras"
    cfg_path, labels_path = run_dir / "config.json", run_dir / "labels.json"
    for p, what in ((cfg_path, "run config"), (labels_path, "run labels file")):
        if not p.is_file():
            raise UserError(f"{p}: missing {what} (needed to rebuild the QAT model of {path})")
    cfg = Config.from_dict(read_json(cfg_path, "run config", mapping=True), str(cfg_path))
    labels = read_json(labels_path, "run labels file")
    if not isinstance(labels, list) or not labels:
        raise UserError(f"{labels_path}: corrupt run labels file (not a list of class names)")
    float_model = build_model(cfg.model, cfg.features, len(labels))
    make = lstm_qat.make_qat_lstm if lstm_qat.is_lstm(float_model) else qat.make_qat_model
    model = make(float_model, cfg.quant, stage=2)
    try:
        model.load_weights(str(path))
    except (OSError, ValueError, KeyError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: cannot load the QAT weights into the model of {cfg_path} ({msg})") from None
    return model
