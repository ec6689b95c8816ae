"""CTRF, pytest-reportlog, live batches, and run metadata from CI environments."""

from __future__ import annotations

import pytest

from workbench import ingest
from workbench.ingest import ci_env
from workbench.ingest.live import parse_batch

from .conftest import FIXTURES


def test_ctrf_retries_and_environment():
    run = ingest.parse_file(FIXTURES / "ctrf.json")
    assert run.format == "ctrf"
    assert run.counts() == {"tests": 3, "passed": 2, "failed": 1, "errors": 0, "skipped": 0}
    checkout = run.attempts("checkout")
    assert [a.outcome for a in checkout] == ["failed", "passed"]
    assert checkout[0].duration_s == pytest.approx(0.8)
    assert run.meta == {
        "branch": "feature/x",
        "commit": "abc123",
        "build": "42",
        "build_url": None,
        "project": "shop",
    }
    assert "home > smoke::loads home" in run.test_ids()
    assert run.duration_s == 12


def test_ctrf_unknown_status_is_an_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"results": {"tool": {"name": "x"}, "tests": [{"name": "a", "status": "meh"}]}}'
    )
    with pytest.raises(ingest.IngestError, match="bad.json: unknown CTRF test status 'meh'"):
        ingest.parse_file(bad)


def test_reportlog_phases_reruns_and_setup_errors():
    run = ingest.parse_file(FIXTURES / "reportlog.jsonl")
    assert run.format == "reportlog"
    assert run.counts() == {"tests": 4, "passed": 2, "failed": 0, "errors": 1, "skipped": 1}
    flaky = run.attempts("tests.test_b::test_flaky")
    assert [a.outcome for a in flaky] == ["failed", "passed"]
    assert flaky[0].message == "ValueError: flaky 17"
    assert "raise ValueError" in flaky[0].details
    assert run.attempts("tests.test_b::test_fixture")[0].outcome == "error"
    assert run.attempts("tests.test_b::test_skip")[0].message == "later"
    assert "tests.test_b.TestK::test_ok" in run.test_ids()


def test_reportlog_bad_line_names_the_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"$report_type": "SessionStart"}\n{not json\n')
    with pytest.raises(ingest.IngestError, match=r"log.jsonl:2: not valid JSON"):
        ingest.parse_file(path)


def test_same_pytest_test_gets_one_id_from_junit_and_reportlog(tmp_path):
    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuite><testcase classname="tests.test_b.TestK" name="test_ok"/></testsuite>'
    )
    assert set(ingest.parse_file(junit).test_ids()) <= set(
        ingest.parse_file(FIXTURES / "reportlog.jsonl").test_ids()
    )


def test_live_batch_validation_stores_nothing_on_any_bad_item():
    good = {"name": "t", "attempts": [{"outcome": "passed", "duration_s": 0.1}]}
    bad = {"name": "u", "attempts": [{"outcome": "exploded"}]}
    assert parse_batch({"tests": [good]}, "live").counts()["passed"] == 1
    with pytest.raises(
        ingest.IngestError, match=r"tests\[1\].attempts\[0\].outcome must be one of"
    ):
        parse_batch({"tests": [good, bad]}, "live")
    with pytest.raises(ingest.IngestError, match="not valid JSON"):
        parse_batch(b"{", "live")


@pytest.mark.parametrize(
    "env,expected",
    [
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_REPOSITORY": "o/r",
                "GITHUB_SHA": "s1",
                "GITHUB_REF_NAME": "main",
                "GITHUB_RUN_ID": "7",
                "GITHUB_SERVER_URL": "https://gh",
            },
            {
                "ci_provider": "github",
                "project": "o/r",
                "commit": "s1",
                "branch": "main",
                "build": "7",
                "build_url": "https://gh/o/r/actions/runs/7",
            },
        ),
        (
            {
                "GITLAB_CI": "true",
                "CI_PROJECT_PATH": "g/p",
                "CI_COMMIT_SHA": "s2",
                "CI_COMMIT_REF_NAME": "dev",
                "CI_PIPELINE_ID": "9",
                "CI_JOB_URL": "https://gl/j",
            },
            {
                "ci_provider": "gitlab",
                "project": "g/p",
                "commit": "s2",
                "branch": "dev",
                "build": "9",
                "build_url": "https://gl/j",
            },
        ),
        (
            {
                "JENKINS_URL": "https://j",
                "JOB_NAME": "job",
                "GIT_COMMIT": "s3",
                "GIT_BRANCH": "origin/rel",
                "BUILD_NUMBER": "3",
                "BUILD_URL": "https://j/3",
            },
            {
                "ci_provider": "jenkins",
                "project": "job",
                "commit": "s3",
                "branch": "rel",
                "build": "3",
                "build_url": "https://j/3",
            },
        ),
        (
            {
                "CIRCLECI": "true",
                "CIRCLE_PROJECT_USERNAME": "u",
                "CIRCLE_PROJECT_REPONAME": "r",
                "CIRCLE_SHA1": "s4",
                "CIRCLE_BRANCH": "b",
                "CIRCLE_BUILD_NUM": "4",
            },
            {
                "ci_provider": "circleci",
                "project": "u/r",
                "commit": "s4",
                "branch": "b",
                "build": "4",
            },
        ),
        (
            {
                "BUILDKITE": "true",
                "BUILDKITE_PIPELINE_SLUG": "pipe",
                "BUILDKITE_COMMIT": "s5",
                "BUILDKITE_BRANCH": "m",
                "BUILDKITE_BUILD_NUMBER": "5",
            },
            {
                "ci_provider": "buildkite",
                "project": "pipe",
                "commit": "s5",
                "branch": "m",
                "build": "5",
            },
        ),
        ({}, {}),
    ],
)
def test_ci_environment_detection(env, expected):
    assert ci_env.detect(env) == expected


def test_metadata_precedence_flags_then_ci_then_file():
    file_meta = {"project": "from-file", "branch": "file-branch", "commit": "file-sha"}
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REF_NAME": "ci-branch", "GITHUB_SHA": "ci-sha"}
    meta = ci_env.run_metadata(file_meta, {"commit": "flag-sha", "branch": None}, env)
    assert (meta["project"], meta["branch"], meta["commit"]) == (
        "from-file",
        "ci-branch",
        "flag-sha",
    )
    assert ci_env.run_metadata({}, {}, {})["project"] == "default"


def test_nunit3_outcomes_labels_and_names():
    run = ingest.parse_file(FIXTURES / "nunit3.xml")
    assert run.format == "nunit"
    assert run.counts() == {"tests": 4, "passed": 1, "failed": 1, "errors": 1, "skipped": 1}
    (totals,) = run.attempts('Shop.Tests.CartTests::Totals(1,"a.b")')
    assert totals.message == "Expected: 3 But was: 2" and "Cart.cs:line 42" in totals.details
    assert run.attempts("Shop.Tests.CartTests::Later")[0].message == "not yet"
    assert run.duration_s == 1.5 and run.warnings == []


def test_trx_outcomes_durations_and_classes():
    run = ingest.parse_file(FIXTURES / "run.trx")
    assert run.format == "trx"
    assert run.counts() == {"tests": 3, "passed": 1, "failed": 1, "errors": 1, "skipped": 0}
    assert [a.duration_s for a in run.attempts("Shop.Tests.CartTests::Slow")] == [60.0]
    (totals,) = run.attempts("Shop.Tests.CartTests::Totals")
    assert totals.message.startswith("Assert.AreEqual failed") and "line 9" in totals.details
    assert run.duration_s == 2.5


def test_xunit_net_decimal_commas_and_exception_types():
    run = ingest.parse_file(FIXTURES / "xunit.xml")
    assert run.format == "xunit"
    assert run.counts() == {"tests": 3, "passed": 1, "failed": 1, "errors": 0, "skipped": 1}
    (totals,) = run.attempts("Shop.Tests.Cart::Totals")
    assert totals.error_type == "Xunit.Sdk.EqualException"
    assert run.attempts("Shop.Tests.Cart::Adds")[0].duration_s == 0.014
    assert run.duration_s == 0.288


def test_nameless_nunit_case_keeps_one_name(tmp_path):
    report = tmp_path / "nameless.xml"
    report.write_text('<test-run><test-case result="Passed"/><test-case result="Failed"/></test-run>')
    results, _ = ingest.parse_file(report).tables()
    assert results.column("test_id").to_pylist() == ["<unnamed #1>", "<unnamed #2>"]
    assert results.column("name").to_pylist() == ["<unnamed #1>", "<unnamed #2>"]
