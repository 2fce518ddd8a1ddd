"""Every shipped model in models/ loads, and its manifest says the truth about its file."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tflm_port.tflite_io import get_metadata, load_model
from training.scoring import load_detector, score_audio

MODELS = Path(__file__).resolve().parents[1] / "models"
MANIFESTS = sorted(MODELS.glob("*.json"))
MWW_BYTES = 55_856  # microWakeWord's "alexa" (pymicro-wakeword 2.5.0)


def test_the_promised_models_ship():
    names = {p.stem for p in MANIFESTS}
    assert {"alexa-float", "alexa-w8", "alexa-w4"} <= names
    small = [json.loads(p.read_text()) for p in MANIFESTS]
    assert any(m["model_bytes"] <= MWW_BYTES for m in small), "a model no larger than microWakeWord's ships"


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.stem)
def test_manifest_matches_model(manifest):
    m = json.loads(manifest.read_text())
    tfl = MODELS / m["model"]
    data = tfl.read_bytes()
    assert m["name"] == manifest.stem and tfl.stem == manifest.stem
    assert m["sha256"] == hashlib.sha256(data).hexdigest() and m["model_bytes"] == len(data)
    md = get_metadata(load_model(data, str(tfl)))
    assert md["labels"] == m["labels"] and m["labels"][-1] == m["keyword"]
    assert md["features"] == m["features"]
    if m["weight_bits"] == 32:
        assert md.get("mode") == "float"
    else:
        assert max(md["layer_bits"]) <= 8 and m["weight_bits"] in md["layer_bits"]
    for k in ("fa_per_hour_1", "fa_per_hour_0p5"):
        assert 0.0 < m["thresholds"][k] <= 1.0
    assert m["thresholds"]["fa_per_hour_0p5"] >= m["thresholds"]["fa_per_hour_1"]
    assert m["smoothing_frames"] >= 1 and m["refractory_s"] > 0 and m["arena_estimate_bytes"] > 0
    assert (MODELS / f"{manifest.stem}.md").is_file()


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.stem)
def test_shipped_model_scores_audio_with_its_manifest(manifest):
    det = load_detector(manifest)
    m = json.loads(manifest.read_text())
    assert det.smoothing_frames == m["smoothing_frames"] and det.refractory_s == m["refractory_s"]
    x = (0.01 * np.random.default_rng(0).normal(size=32000)).astype(np.float32)
    s = score_audio(det, x)
    assert len(s.smoothed) > 100 and np.all((s.smoothed >= 0) & (s.smoothed <= 1))
    from tflm_port.firmware_runner import deployable_model

    model, cfg, report = deployable_model(manifest)
    assert model == MODELS / m["model"] and report["stream"]["threshold_at_1fah"] == m["thresholds"]["fa_per_hour_1"]


@pytest.mark.parametrize("recipe", sorted((MODELS / "recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_is_a_valid_config(recipe):
    """The recipes the README and the model cards name load as they are (a typo would only show at training)."""
    from training.config import load_config

    cfg = load_config(recipe)
    assert cfg.data.keyword == "alexa"


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.stem)
def test_model_card_is_written_from_its_manifest(manifest):
    """The card says what the manifest says, background noise included (a card edited by hand or left
    behind by a rebuild fails here)."""
    from training.ship import model_card

    m = json.loads(manifest.read_text())
    card = manifest.with_suffix(".md").read_text()
    assert card == model_card(m)
    noise = m["recipe"]["data"].get("noise_dirs") or []
    assert all(f"`{d}`" in card for d in noise) and (noise or "synthetic noise bank" in card)
