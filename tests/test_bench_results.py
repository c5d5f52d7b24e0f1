"""bench/results.json merging: a run of some of a benchmark's parts keeps the others."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import BenchResult, Row, merge_results


def _row(bench: str, value: float) -> Row:
    return Row(bench=bench, size="100k", metric="p99", value=value, unit="ms")


def _entry(path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(path.read_text())["benchmarks"]["backends"]
    return entry


def test_a_partial_run_replaces_what_it_measured_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    full = BenchResult(
        "backends",
        rows=[_row("sqlite /latest", 0.8), _row("sqlite seed of 1000", 50.0)],
        data={"rounds": 3, "sizes": {"100000": {"handlers/sqlite": 1, "ingest/sqlite": 2}}},
    )
    merge_results(full, path)
    merge_results(BenchResult("other", rows=[_row("x", 1.0)]), path)

    partial = BenchResult(
        "backends",
        rows=[_row("sqlite seed of 1000", 54.0)],
        data={"rounds": 3, "sizes": {"100000": {"ingest/sqlite": 3}}},
        partial=True,
    )
    merge_results(partial, path)
    entry = _entry(path)
    assert [(row["bench"], row["value"]) for row in entry["rows"]] == [
        ("sqlite /latest", 0.8),
        ("sqlite seed of 1000", 54.0),
    ]
    assert entry["data"] == {
        "rounds": 3,
        "sizes": {"100000": {"handlers/sqlite": 1, "ingest/sqlite": 3}},
    }
    assert "other" in json.loads(path.read_text())["benchmarks"]

    # A whole run replaces the entry.
    merge_results(BenchResult("backends", rows=[_row("sqlite /latest", 0.9)]), path)
    assert [row["bench"] for row in _entry(path)["rows"]] == ["sqlite /latest"]
