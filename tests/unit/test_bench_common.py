"""The benchmark result schema, file round trip and RESULTS.md rendering (no benchmarks run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flts.bench.common import (
    SCHEMA_FIELDS,
    Timer,
    load_results,
    machine_info,
    make_result,
    percentile,
    write_result,
)
from flts.bench.markdown import command_for, flatten, fmt, render, write_markdown


def _result(name: str = "kafka", met: bool = True, quick: bool = False):  # type: ignore[no-untyped-def]
    return make_result(
        name,
        Timer(),
        quick=quick,
        config={"messages": 1000, "producer": {"linger.ms": 5}},
        figures={"produce": {"ratio": 0.93, "flts_msgs_per_s": 41234.5}, "p99_ms": 4.2},
        target={"description": "ratio >= 0.8", "min_ratio": 0.8},
        target_met=met,
        notes=["a note"],
    )


def test_result_has_every_schema_field_and_machine_facts() -> None:
    doc = _result().to_json()
    assert list(doc) == list(SCHEMA_FIELDS)
    machine = doc["machine"]
    for key in ("cores", "memory_gib", "cpu_model", "python", "platform", "git_commit"):
        assert key in machine
    libs = machine["libraries"]
    for lib in ("torch", "numpy", "pandas", "confluent_kafka", "librdkafka", "mlflow", "fastapi"):
        assert lib in libs
    assert libs["numpy"]
    assert isinstance(doc["target_met"], bool)


def test_target_needs_a_description() -> None:
    with pytest.raises(ValueError, match="description"):
        make_result(
            "x", Timer(), quick=True, config={}, figures={}, target={"min": 1}, target_met=True
        )


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    path = write_result(_result(), tmp_path)
    assert path.name == "kafka.json"
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "partial.json").write_text(json.dumps({"benchmark": "p"}))
    docs = load_results(tmp_path)
    assert [d["benchmark"] for d in docs] == ["kafka"]
    assert docs[0]["figures"]["produce"]["ratio"] == 0.93


def test_markdown_has_a_section_per_benchmark_with_verdict_and_command(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_result(_result("kafka", met=True), results)
    write_result(_result("api", met=False, quick=True), results)
    md = write_markdown(results, tmp_path / "RESULTS.md").read_text()
    assert md.index("## kafka") < md.index("## api")  # fixed display order, not alphabetical
    assert "| produce.ratio | 0.930 |" in md
    assert "| produce.flts_msgs_per_s | 41,23" in md
    assert "**met**" in md
    assert "**missed**" in md
    assert "`flts bench kafka`" in md
    assert "`flts bench api --quick`" in md
    assert "Thresholds: min_ratio = 0.800" in md
    assert "- a note" in md
    assert "results/" in md


def test_render_of_no_results_is_just_the_header() -> None:
    md = render([])
    assert md.startswith("# FLTS benchmark results")
    assert "##" not in md


def test_flatten_and_format() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == [("a.b", 1), ("a.c.d", 2), ("e", 3)]
    assert fmt(None) == "n/a"
    assert fmt(True) == "yes"
    assert fmt(12345) == "12,345"
    assert fmt(2.0e8) == "200,000,000"
    assert fmt(0.000123) == "0.000123"
    assert fmt("a|b") == "a\\|b"
    assert command_for({"benchmark": "api_prophet", "quick": False}) == "flts bench api"
    lags = {"benchmark": "api_30_rows", "config": {"preprocess_config": '{"lags": []}'}}
    assert command_for(lags) == """flts bench api --config '{"lags": []}'"""
    defaults = {"benchmark": "api", "quick": True, "config": {"preprocess_config": "defaults"}}
    assert command_for(defaults) == "flts bench api --quick"


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert percentile(list(range(101)), 99) == 99.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_machine_info_reads_this_machine() -> None:
    info = machine_info()
    assert info["cores"]
    assert info["cores"] >= 1
    assert info["python"].count(".") == 2
