"""`make demo`: the main job on the offline default – synthetic data, float FFNN, evaluation.

Equivalent to ``python training/train.py`` followed by a short summary.
"""
from __future__ import annotations

import sys

from training.errors import cli_main


def main(argv=None) -> int:
    from training.train import main as train_main

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        train_main(args)
    except SystemExit as e:  # train.main is wrapped by cli_main only when run as a script
        if e.code:
            return int(e.code)
    return 0


if __name__ == "__main__":
    cli_main(main)()
