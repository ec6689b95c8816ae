"""Flaky/broken labels, run comparison and duration regressions on hand-made histories."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from workbench.analysis import compare, durations
from workbench.ingest import Attempt, ParsedRun
from workbench.models import TestAnalytics
from workbench.store.writes import insert_run

T0 = datetime(2026, 1, 1)


def add_run(store, i, outcomes, commit, branch="main", durations_s=None):
    """outcomes: {test name: ["failed", "passed"]} (attempts in order)."""
    run = ParsedRun("junit", f"hand/{i}", f"{i:016x}".ljust(64, "0"), T0 + timedelta(hours=i))
    for name, seq in outcomes.items():
        dur = (durations_s or {}).get(name, 0.1)
        run.add(
            name,
            [Attempt(o, dur, "boom" if o != "passed" else None) for o in seq],
            classname="suite",
        )
    insert_run(store, run, {"project": "p", "branch": branch, "commit": commit})


@pytest.fixture
def history(store):
    for i in range(10):
        add_run(
            store,
            i,
            {
                "retry_flaky": ["failed", "passed"] if i == 4 else ["passed"],
                "commit_flaky": ["failed"] if i == 6 else ["passed"],
                "broken": ["failed"] if i >= 6 else ["passed"],
                "alternating": ["failed"] if i % 2 and i != 7 else ["passed"],
                "stable": ["passed"],
            },
            commit=f"c{i // 2}" if i in (6, 7) else f"sha{i}",
        )
    return TestAnalytics(store=store, window="all time")


def test_labels_with_evidence(history):
    df = history.flaky_tests().set_index("test_id")
    assert df.loc["suite::retry_flaky", "label"] == "flaky"
    assert "passed on retry in 1 run" in df.loc["suite::retry_flaky", "evidence"]
    assert df.loc["suite::commit_flaky", "label"] == "flaky"
    assert "same commit (1): c3" in df.loc["suite::commit_flaky", "evidence"]
    assert df.loc["suite::broken", "label"] == "broken"
    assert "failed the last 4 runs in a row" in df.loc["suite::broken", "evidence"]
    assert df.loc["suite::alternating", "label"] == "statistically flaky"
    assert df.loc["suite::alternating", "flip_rate"] == pytest.approx(7 / 9)
    assert "suite::stable" not in df.index
    assert list(df.loc["suite::broken", "strip"])[-4:] == ["failed"] * 4


def test_flaky_window_limits_runs(history):
    history.flaky_runs = 5
    df = history.flaky_tests().set_index("test_id")
    assert df.loc["suite::broken", "runs"] == 5
    assert "suite::retry_flaky" not in df.index  # its retry was 6 runs ago


def test_compare_runs_statuses():
    run = pd.DataFrame(
        {
            "test_id": ["a", "b", "c", "d", "e"],
            "outcome": ["failed", "error", "passed", "failed", "passed"],
        }
    )
    base = pd.DataFrame(
        {"test_id": ["a", "b", "c", "f"], "outcome": ["passed", "failed", "failed", "passed"]}
    )
    out = compare.compare_runs(run, base).set_index("test_id")["status"].to_dict()
    assert out == {
        "a": "new failure",
        "b": "still failing",
        "c": "fixed",
        "d": "new failure",
        "e": "new test",
        "f": "removed test",
    }
    assert compare.summarize(compare.compare_runs(run, base))["new failure"] == 2
    # A run still in progress has not removed the tests it has not reached.
    live = compare.compare_runs(run, base, running=True).set_index("test_id")["status"]
    assert live["f"] == "not run yet" and "removed test" not in set(live)


def test_live_run_detail_counts_so_far_and_removes_nothing(store):
    """A live run half way: its detail shows what finished, and the rest as not run yet."""
    from workbench.intake import LocalIntake
    from workbench.models import TestAnalytics

    intake = LocalIntake(store)
    base = intake.live_start({"project": "p", "branch": "main"})
    intake.live_append(base, [{"classname": "c", "name": f"t{i}",
                               "attempts": [{"outcome": "passed"}]} for i in range(4)])
    intake.live_finish(base, 1.0)
    run = intake.live_start({"project": "p", "branch": "main"})
    intake.live_append(run, [{"classname": "c", "name": "t0",
                              "attempts": [{"outcome": "failed", "message": "x"}]}])
    m = TestAnalytics(store=store, window="all time", run_id=run)
    assert m.run_info()["status"] == "running" and m.run_info()["tests"] == 1
    statuses = m.run_changes().set_index("test_id")["status"].to_dict()
    assert statuses == {"c::t0": "new failure", "c::t1": "not run yet", "c::t2": "not run yet",
                        "c::t3": "not run yet"}
    intake.live_finish(run, 2.0)
    assert set(m.run_changes().status) == {"new failure", "removed test"}


def test_compare_without_base_counts_every_failure_as_new():
    run = pd.DataFrame({"test_id": ["a", "b"], "outcome": ["failed", "passed"]})
    out = compare.compare_runs(run, None)
    assert out[out.test_id == "a"].status.item() == "new failure"


def test_model_run_failures_marks_new_known_and_retried(store):
    add_run(store, 1, {"x": ["failed"], "y": ["passed"], "z": ["passed"]}, "a")
    add_run(store, 2, {"x": ["failed"], "y": ["failed"], "z": ["failed", "passed"]}, "b")
    m = TestAnalytics(store=store, window="all time")
    m.run_id = m.runs().run_id.iloc[0]
    got = m.run_failures().set_index("test_id")["status"].to_dict()
    assert got == {
        "suite::x": "still failing",
        "suite::y": "new failure",
        "suite::z": "passed on retry",
    }


@pytest.mark.parametrize(
    "recent,older,older_runs,found",
    [
        (0.9, 0.2, 10, True),  # 4.5x slower
        (0.26, 0.2, 10, False),  # 1.3x: noise
        (0.012, 0.005, 10, False),  # 2.4x but only 7 ms
        (0.9, 0.2, 3, False),  # too little history
    ],
)
def test_duration_regression_thresholds(recent, older, older_runs, found):
    df = pd.DataFrame(
        {
            "test_id": ["t"],
            "recent_median_s": [recent],
            "older_median_s": [older],
            "older_runs": [older_runs],
        }
    )
    assert (len(durations.regressions(df)) == 1) is found


def test_model_finds_duration_regression(store):
    for i in range(12):
        add_run(
            store,
            i,
            {"slow": ["passed"], "steady": ["passed"]},
            f"s{i}",
            durations_s={"slow": 1.0 if i >= 7 else 0.2, "steady": 0.15},
        )
    m = TestAnalytics(store=store, window="all time")
    reg = m.duration_regressions()
    assert reg.test_id.tolist() == ["suite::slow"]
    assert reg.ratio.item() == pytest.approx(5.0)
    assert m.slowest_tests().test_id.iloc[0] == "suite::slow"


def test_compare_against_a_named_run(store):
    add_run(store, 1, {"x": ["failed"], "y": ["passed"]}, "a")
    add_run(store, 2, {"x": ["passed"], "y": ["passed"]}, "b")
    add_run(store, 3, {"x": ["failed"], "y": ["failed"]}, "c")
    m = TestAnalytics(store=store, window="all time")
    first, _, last = m.runs().run_id.iloc[::-1]
    m.run_id = last
    assert m.run_changes().set_index("test_id")["status"].to_dict() == {
        "suite::x": "new failure",
        "suite::y": "new failure",
    }
    m.base_run_id = first
    assert m.base_of(last) == first
    assert m.run_changes().set_index("test_id")["status"].to_dict() == {
        "suite::x": "still failing",
        "suite::y": "new failure",
    }


def test_a_live_run_shows_the_tests_running_now(store):
    from workbench.intake import LocalIntake
    from workbench.models import TestAnalytics

    intake = LocalIntake(store)
    run = intake.live_start({"project": "p"})
    m = TestAnalytics(store=store, window="all time", run_id=run)
    before = store.query("data_version").iloc[0].tolist()
    intake.live_append(run, [], running=["c::slow", "c::other"])
    assert m.running_tests().test_id.tolist() == ["c::other", "c::slow"]
    assert store.query("data_version").iloc[0].tolist() != before  # dashboards refresh
    intake.live_append(run, [{"classname": "c", "name": "other",
                              "attempts": [{"outcome": "passed"}]}], running=["c::slow"])
    assert m.running_tests().test_id.tolist() == ["c::slow"]
    intake.live_finish(run, 1.0)
    assert m.running_tests().empty
