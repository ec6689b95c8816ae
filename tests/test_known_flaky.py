"""Run detail marks a known-flaky test as such, as test selection does (issue 21, item 12):
on the demo dataset, each failure in a run of a test proven flaky (it passed and failed on
one commit, or on a retry: the Flaky tests tab's "flaky") says ``known flaky`` in its
status, the others do not, and ``observatory select`` gives such tests the reason "known
flaky"."""

from __future__ import annotations

import pytest

from workbench.analysis.culprits import test_key as key_of
from workbench.models import TestAnalytics
from workbench.selection.select import select_tests
from workbench.views.runs import RunDetail

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow


def test_run_detail_and_selection_agree_on_the_known_flaky(demo_store):
    m = TestAnalytics(store=demo_store, project="checkout-service", window="90 days")
    flaky = set(m.flaky_tests(labels=("flaky",))["test_id"])
    assert flaky
    runs = m.runs(limit=200)
    view = RunDetail(model=m)
    marked: dict[str, set[str]] = {"known flaky": set(), "other": set()}
    for run_id in runs["run_id"]:
        m.run_id = run_id
        shown = view._failures.value
        if shown is None or shown.empty:
            continue
        for status, test in zip(shown["status"], shown["test_id"], strict=True):
            known = status.endswith(" · known flaky")
            assert known == (test in flaky), (run_id, test, status)
            marked["known flaky" if known else "other"].add(test)
    assert marked["known flaky"] and marked["other"]  # both kinds of failure were seen
    ranking = select_tests(demo_store, "checkout-service", None)["ranking"]
    reasons = {key_of(r["test"]): r["reasons"] for r in ranking}  # (node ids: a key each)
    # select weighs the project's last 30 runs, the Flaky tests tab each test's last runs in
    # the window: the same proof, over different runs — tests proven flaky in both agree.
    both = [t for t in marked["known flaky"]
            if any(r.startswith("known flaky") for r in reasons[key_of(t)])]
    assert both, {t: reasons[key_of(t)] for t in marked["known flaky"]}
