"""subkws-data: prepare keyword-spotting data sets (also ``python -m data_scripts.cli``).

  subkws-data synthetic --keyword alexa             # offline, espeak-ng voices (default source)
  subkws-data speech-commands --keyword marvin [--folder EXTRACTED_SC]
  subkws-data folder --folder my_recordings --keyword hey_robot
  subkws-data stream --dataset DATASET --split test --minutes 30 --out long_test

Each data command prints the prepared dataset folder on stdout (progress goes to stderr).
Bad input prints one line "error: <file or key>: <problem>" and exits with status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_scripts.config import DataConfig, load_data_config
from basics.errors import UserError, cli_main
from basics.audio import list_audio, load_audio
from data_scripts.common import read_manifest_rows
from data_scripts.noise import load_noise_dir, noise_source
from data_scripts.speech_commands import prepare_folder, prepare_speech_commands
from data_scripts.streaming import make_stream
from data_scripts.synthetic import prepare_synthetic


def _common(p: argparse.ArgumentParser, keyword_default: str | None = "alexa") -> None:
    p.add_argument("--config", help="YAML/JSON config file; its data: section gives the defaults below")
    p.add_argument("--keyword", help=f"the keyword (default: config or '{keyword_default}')")
    p.add_argument("--root", help="cache folder for generated/prepared data (default: data)")
    p.add_argument("--seed", type=int, help="random seed (default 1234)")
    p.add_argument("--stream-minutes", type=float, help="length of the val/test streams in minutes (default 10)")
    p.add_argument("--noise-dir", help="folder of background-noise audio for the streams (default: the "
                                       "source's own noise, else synthetic coloured noise)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="subkws-data", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[1:]))
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    p = sub.add_parser("synthetic", help="generate the offline espeak-ng data set",
                       description="Generate keyword and negative clips with espeak-ng (all English accents x "
                                   "voice variants), split by voice, with val/test streams. Cached: the same "
                                   "options return the existing folder at once.")
    _common(p)
    p.add_argument("--num-voices", type=int, help="voices (accent+variant) to use; 0 = default 400")
    p.add_argument("--clips-per-voice", type=int, help="keyword clips per voice (negatives: 2.4x); 0 = default 6")
    p = sub.add_parser("speech-commands", help="prepare Google Speech Commands v2 (wake-word view)",
                       description="Keyword = one Speech Commands word, every other word negative, official "
                                   "validation/testing lists as splits, _background_noise_ kept in noise/.")
    _common(p, keyword_default="alexa")
    p.add_argument("--folder",
                   help="an extracted speech_commands_v0.02 folder; empty = download (2.4 GB) into --root")
    p = sub.add_parser("folder", help="prepare your own recordings",
                       description="FOLDER/<keyword>/ holds keyword recordings, every other subfolder negatives; "
                                   "FOLDER/_noise/ (optional) background noise. Split 80/10/10 by file or speaker hash.")
    _common(p)
    p.add_argument("--folder", required=True, help="folder with one subfolder per label")
    p = sub.add_parser("stream", help="write a long streaming test file from a prepared dataset",
                       description="Concatenate negative speech, silence and noise with keywords at known times; "
                                   "writes OUT.wav and OUT.json (keyword start_s/end_s).")
    p.add_argument("--dataset", required=True, help="a prepared dataset folder (with manifest.csv)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="clips of this split (default test)")
    p.add_argument("--minutes", type=float, default=10.0, help="stream length in minutes (default 10)")
    p.add_argument("--seed", type=int, default=1234, help="random seed (default 1234)")
    p.add_argument("--noise-dir", help="folder of background-noise audio (default: dataset noise/, else synthetic)")
    p.add_argument("--snr-min", type=float, default=5.0, help="lowest speech-to-noise ratio in dB (default 5)")
    p.add_argument("--snr-max", type=float, default=25.0, help="highest speech-to-noise ratio in dB (default 25)")
    p.add_argument("--out", required=True, help="output path without extension: writes OUT.wav and OUT.json")
    return ap


def _data_config(a) -> DataConfig:
    cfg = load_data_config(a.config)
    for opt, key in (("keyword", "keyword"), ("root", "root"), ("seed", "seed"), ("stream_minutes", "stream_minutes"),
                     ("noise_dir", "noise_dir"), ("folder", "folder"), ("num_voices", "num_voices"),
                     ("clips_per_voice", "clips_per_voice")):
        v = getattr(a, opt, None)
        if v is not None:
            setattr(cfg, key, v)
    if cfg.noise_dir and not Path(cfg.noise_dir).is_dir():
        raise UserError(f"{cfg.noise_dir}: no such noise folder")
    if a.cmd != "synthetic" and cfg.folder and not Path(cfg.folder).is_dir():
        raise UserError(f"{cfg.folder}: no such data folder")
    return cfg


def _stream(a) -> int:
    ds = Path(a.dataset)
    if not ds.is_dir():
        raise UserError(f"{ds}: no such dataset folder")
    if a.snr_min > a.snr_max:
        raise UserError(f"--snr-min: {a.snr_min} is above --snr-max {a.snr_max}")
    rows = read_manifest_rows(ds)
    kw = [ds / r["path"] for r in rows if r["split"] == a.split and r["label"] == "keyword"]
    neg = [ds / r["path"] for r in rows if r["split"] == a.split and r["label"] == "negative"]
    if not kw:
        raise UserError(f"{ds / 'manifest.csv'}: no keyword clips in split '{a.split}'")
    if a.noise_dir:
        noise = load_noise_dir(a.noise_dir)
    elif (ds / "noise").is_dir() and list_audio(ds / "noise"):
        noise = [load_audio(p, quiet=True) for p in list_audio(ds / "noise")]
    else:
        noise = noise_source(DataConfig(), None)
    out = Path(a.out)
    if out.suffix.lower() in (".wav", ".json"):
        out = out.with_suffix("")
    wav, js = out.with_name(out.name + ".wav"), out.with_name(out.name + ".json")
    lab = make_stream(kw, neg, noise, a.minutes, a.seed, wav, js, snr_db=(a.snr_min, a.snr_max), source_root=ds)
    print(f"{wav}: {lab['duration_s']:.0f} s, {len(lab['keywords'])} keywords, "
          f"{lab['num_negatives']} negatives")
    return 0


@cli_main
def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    if a.cmd == "stream":
        return _stream(a)
    cfg = _data_config(a)
    progress = not a.no_progress
    if a.cmd == "synthetic":
        path = prepare_synthetic(cfg, progress=progress)
    elif a.cmd == "speech-commands":
        path = prepare_speech_commands(cfg, progress=progress)
    else:
        path = prepare_folder(cfg, progress=progress)
    print(path)
    return 0


if __name__ == "__main__":
    main()
