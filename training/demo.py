"""`make demo`: the main job on the offline default – synthetic data, float FFNN, evaluation.

Equivalent to ``python training/train.py`` (which ends with a short summary and the DET PNG path).
"""
from __future__ import annotations

if __name__ == "__main__":
    from training.train import main

    main()
