"""The per-core chart of issue 14 (bench/kernels_bits.png, `python -m bench.kernels --chart`): it draws
from the records in bench/results.json, one panel per core, only bench.kernels' own series."""
import json
from pathlib import Path

import pytest

from bench import charts
from tflm_port import board_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"


@pytest.fixture(scope="module")
def records():
    return json.loads(RESULTS.read_text())


def test_every_core_has_a_panel_with_one_point_per_bit_width(records):
    boards = charts.panel_boards(records)
    assert boards == [b for b in board_table.BOARDS if b in boards]   # board-table order
    assert set(boards) == set(board_table.BOARDS)
    for board in boards:
        s = charts.series(records, board)
        bits = [b for b, _ in s["kbench"]]
        # the sparse / A4 / density records share board, model and MACs: they must not enter the series
        assert len(bits) == len(set(bits)), (board, s["kbench"])
        assert {1, 2, 4, 8} <= set(bits), board
        kb = {(r["weight_bits"], r["instructions"]) for r in records
              if r.get("board") == board and str(r.get("workload", "")).startswith("kernel bench (kws_kbench)")
              and r.get("kernel") not in ("reference", "float")}
        assert set(s["kbench"]) == kb
        labels = [label for label, _ in s["lines"]]
        assert labels[0] == "our float32"
        assert any(label.startswith(("CMSIS-NN s8", "ggml q8_0")) for label in labels), board


def test_panels_png_written_atomically(records, tmp_path):
    out = tmp_path / "kernels_bits.png"
    assert charts.write_panels(records, out) == out
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp"))
    assert charts.panels_png([]) is None
    assert charts.write_panels([], tmp_path / "none.png") is None


def test_charts_cli_bad_results_is_one_line(tmp_path, capsys):
    bad = tmp_path / "results.json"
    bad.write_text("{not json")
    assert charts.main(["--results", str(bad), "--out", str(tmp_path / "c"), "--panels", str(tmp_path / "p.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]
    assert not (tmp_path / "p.png").exists()
