"""Typed settings from files and the command line: the part of the configuration machinery that every
stage shares (each stage owns its dataclass and its ranges; training.config composes them).

A settings file is YAML or JSON, nested by section; values are coerced to the field types and
checked against ranges, and every problem is one UserError line naming the file and the key.
"""
from __future__ import annotations

import json
import math
import typing
from dataclasses import fields
from pathlib import Path

import yaml

from basics.errors import UserError


def read_config_file(path: str | Path) -> dict:
    """The mapping in a YAML or JSON config file (one UserError line when missing or unparsable)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such config file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read config ({type(e).__name__})") from None
    try:
        d = json.loads(text) if path.suffix == ".json" else (yaml.safe_load(text) or {})
    except Exception as e:
        raise UserError(f"{path}: cannot parse config ({str(e).splitlines()[0]})") from None
    if not isinstance(d, dict):
        raise UserError(f"{path}: expected a mapping of sections, got {type(d).__name__}")
    return d


def check_value(key: str, value, ranges: dict, origin: str = "config") -> None:
    """UserError unless ``value`` is allowed for ``key`` by ``ranges`` (key -> (min, max) inclusive, or a
    tuple of allowed strings; numbers must also be finite); keys without a range pass."""
    rng = ranges.get(key)
    if rng is None:
        return
    if isinstance(rng[0], str):
        if value not in rng:
            raise UserError(f"{origin}: {key} must be one of {', '.join(rng)}, got {value!r}")
        return
    values = value if isinstance(value, list) else [value]
    lo, hi = rng
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise UserError(f"{origin}: {key} must be a number, got {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise UserError(f"{origin}: {key} must be finite, got {v}")
        if not lo <= v <= hi:
            raise UserError(f"{origin}: {key} = {v} is outside {lo}..{hi}")


def coerce(value, typ, key: str, origin: str):
    """``value`` (from a file or the command line) as the field type ``typ``; UserError naming ``key``."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise UserError(f"{origin}: {key} must be true or false, got {value!r}")
    if typ in (int, float):
        try:
            if typ is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return typ(value)
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"{origin}: {key} must be {typ.__name__}, got {value!r}") from None
    if typ is str:
        return str(value)
    if typ is dict:
        if isinstance(value, str):  # command line: "activation=pact:4,weight=sawb:4"
            pairs = [p.split("=", 1) for p in value.replace(" ", "").split(",") if p]
            if not all(len(p) == 2 for p in pairs):
                raise UserError(f"{origin}: {key} must be name=value pairs separated by commas, got {value!r}")
            value = dict(pairs)
        if not isinstance(value, dict):
            raise UserError(f"{origin}: {key} must be a mapping, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    if typ is list or typing.get_origin(typ) is list:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("[") and text.endswith("]"):  # command line in the files' YAML form: [a, b]
                text = text[1:-1]
            parts = text.replace(",", " ").split()
            if key.endswith("_dirs"):
                value = parts
            else:
                try:
                    value = [int(v) for v in parts]
                except ValueError:
                    raise UserError(f"{origin}: {key} must be a comma-separated list of integers, got {value!r}") from None
        if not isinstance(value, list):
            raise UserError(f"{origin}: {key} must be a list, got {value!r}")
        if key.endswith("_dirs"):
            if not all(isinstance(v, str) for v in value):
                raise UserError(f"{origin}: {key} must be a list of folder paths, got {value!r}")
        elif key.endswith("sources"):
            pass  # a list of mappings, checked by data_scripts.sources.parse_sources
        else:
            for v in value:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise UserError(f"{origin}: {key} must hold integers, got {v!r}")
        return value
    return value


def update_section(obj, section: str, values, ranges: dict, origin: str = "config"):
    """Set the fields of the dataclass ``obj`` from the mapping ``values`` (section ``section`` of a
    file or command line), coercing and range-checking each value as it is set."""
    if not isinstance(values, dict):
        raise UserError(f"{origin}: section '{section}' must be a mapping")
    hints = typing.get_type_hints(type(obj))
    known = {f.name for f in fields(obj)}
    for k, v in values.items():
        if k not in known:
            raise UserError(f"{origin}: unknown key '{section}.{k}'")
        value = coerce(v, hints[k], f"{section}.{k}", origin)
        check_value(f"{section}.{k}", value, ranges, origin)  # each value as it is set: --epochs -3 fails here
        setattr(obj, k, value)
    return obj
