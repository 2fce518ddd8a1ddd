"""`make demo`: the main job on the offline default – every installed TTS backend, the FA/h recipe,
float FFNN, evaluation.

Equivalent to ``python training/train.py --config models/recipes/demo.yaml`` (plus
``--set data.kokoro_voices=$KOKORO_VOICES`` when that variable names the Kokoro voice packs); it
says which TTS backends it uses and ends with a short summary and the DET PNG path. Extra
arguments are passed to train.py.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "models" / "recipes" / "demo.yaml"


def demo_args(argv: list[str]) -> list[str]:
    args = ["--config", str(RECIPE)]
    voices = os.environ.get("KOKORO_VOICES", "")
    if voices:
        args += ["--set", f"data.kokoro_voices={voices}"]
    return args + argv


if __name__ == "__main__":
    from data_scripts.config import load_data_config
    from data_scripts.tts import available_backends
    from training.cli import main
    from training.train import log

    args = demo_args(sys.argv[1:])
    ok, missing = available_backends(os.environ.get("KOKORO_VOICES", ""))
    left_out = [n[1:] for n in str(load_data_config(RECIPE).tts).split(",") if n.strip().startswith("-")]
    used = [n for n in ok if n not in left_out]
    log(f"demo: TTS backends {', '.join(used)}" + (f"; not used: {', '.join(missing)}" if missing else "")
        + (f"; left out by the recipe: {', '.join(left_out)} (it made real voices worse: README Results)"
           if left_out else ""))
    main(args)
