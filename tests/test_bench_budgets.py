"""The budget table the benchmark report computes (pure: no database)."""

from __future__ import annotations

from typing import Any

from bench.workloads import budgets


def _report(**extra: Any) -> dict[str, Any]:
    page = {"requests_per_s": 40.0, "statements_per_request": 15.0, "errors": 0}
    return {"baseline_raw": {"rps": 1000.0}, "workloads": {"graphql_contact_page": page}, **extra}


def _graphql(report: dict[str, Any]) -> dict[str, Any]:
    [budget] = [b for b in budgets(report) if b["budget"].startswith("GraphQL")]
    return budget


def _load(rps: float, **extra: Any) -> dict[str, Any]:
    return {"rps": rps, "non_2xx": 0, "errors": 0, "pages_with_errors": [], **extra}


def test_the_graphql_page_is_measured_by_loadgen_when_it_ran() -> None:
    budget = _graphql(_report(graphql_loadgen=_load(300.0)))
    assert budget["measured"] == 0.3
    assert budget["met"] is True
    assert "(loadgen)" in budget["budget"]
    assert budget["statements_per_request"] == 15.0


def test_a_page_answered_with_graphql_errors_fails_the_budget() -> None:
    failing = _load(300.0, pages_with_errors=["0192...: 200 {'errors': [...]}"])
    assert _graphql(_report(graphql_loadgen=failing))["met"] is False
    assert _graphql(_report(graphql_loadgen=_load(300.0, non_2xx=1)))["met"] is False


def test_without_loadgen_the_scenario_run_is_measured() -> None:
    budget = _graphql(_report())
    assert budget["measured"] == 0.04
    assert budget["met"] is False
    assert "(loadgen)" not in budget["budget"]


def test_the_endpoint_floor_is_shown_beside_the_page_and_does_not_decide_it() -> None:
    floor = {"rps": 450.0, "non_2xx": 0, "errors": 0}
    budget = _graphql(_report(graphql_loadgen=_load(30.0, floor=floor)))
    assert budget["endpoint_floor"] == 0.45
    assert budget["measured"] == 0.03
    assert budget["met"] is False


def test_a_floor_run_with_errors_is_not_shown() -> None:
    floor = {"rps": 450.0, "non_2xx": 3, "errors": 0}
    assert "endpoint_floor" not in _graphql(_report(graphql_loadgen=_load(30.0, floor=floor)))
    assert "endpoint_floor" not in _graphql(_report(graphql_loadgen=_load(30.0)))
