"""Property-based fuzzing of the Python readers (issue 15): damaged copies of the committed seed
models (firmware/fuzz/seeds) and of a small WAV go through tflite_io, inspect, convert, export, the
reference, deploy's metadata check and the audio loader; each must end in a result or one
UserError. A few dozen examples per reader here (seconds); the long run is
``python -m bench.fuzz --only python --cases 100000`` (bench/results.json, benchmark "fuzz").
SUBKWS_FUZZ_EXAMPLES sets the examples per reader for this test."""
from __future__ import annotations

import os

import pytest

from tests.fuzz_support import need_module

need_module("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from bench.fuzz import TARGETS, check, strategy  # noqa: E402

EXAMPLES = int(os.environ.get("SUBKWS_FUZZ_EXAMPLES", "40"))


@pytest.mark.parametrize("target", list(TARGETS))
def test_reader_gives_a_result_or_one_user_error(target):
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy(target))
    def prop(data):
        check(target, data)

    prop()
