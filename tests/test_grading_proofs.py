"""Proofs 1-4 for every assignment (and the fixture): ``course-tools check`` as tests.

Each assignment is self-tested once (nbgrader generate_assignment + parallel autograde of the
solution and of the untouched release, and one nbclient run of the solution whose test cells are
re-run in the same kernel against every mutant); the tests below read that one report.
"""

from __future__ import annotations

import shutil

import pytest
from fixtures.grading_helpers import FIXTURE_COURSE, all_assignments, assignment_ids

from course_tools.grading.selftest import run_mutants, self_test

pytestmark = [pytest.mark.grading, pytest.mark.slow]
#: One xdist group per assignment (conftest.py): each self-test runs once, on one worker, and the
#: assignments' self-tests run side by side.
XDIST_SPLIT_BY = "report"

CASES = all_assignments()
IDS = assignment_ids()
_REPORTS: dict[tuple, object] = {}


@pytest.fixture(params=CASES, ids=IDS)
def report(request):
    key = request.param
    if key not in _REPORTS:
        _REPORTS[key] = self_test(*key, jobs=2)
    return _REPORTS[key]


def _check(report, name):
    matches = [c for c in report.checks if c.name == name]
    assert matches, f"no check {name!r} in\n{report.table()}"
    return matches[0]


def test_proof1_solution_autogrades_to_full_marks(report):
    check = _check(report, "solution autogrades to full marks")
    assert check.passed, report.table()
    assert _check(report, "solution runs cleanly (nbclient)").passed, report.table()


def test_proof2_release_autogrades_to_zero_within_timeout(report):
    check = _check(report, "release autogrades to zero")
    assert check.passed, report.table()
    assert check.detail.startswith("0/")
    # Wall time is reported (in the table), never asserted: it fails only on a real timeout.
    timing = _check(report, "timeout sized to the assignment (reported)")
    assert timing.passed, report.table()
    print(f"{report.assignment}: {timing.detail}")


def test_proof3_every_hidden_test_catches_a_mutant(report):
    mutant_checks = [c for c in report.checks if c.name.startswith(("mutant ", "hidden test "))]
    assert any(c.name.startswith("hidden test ") for c in mutant_checks)
    assert all(c.passed for c in mutant_checks), report.table()


def test_proof4_release_leaks_nothing(report):
    assert _check(report, "release has no leaks").passed, report.table()
    assert report.leaks == []


def test_whole_self_test_passes(report):
    assert report.passed, report.table()


@pytest.mark.parametrize("report", [(FIXTURE_COURSE, "mean_variance")], indirect=True)
def test_fixture_mutant_failures_are_the_expected_cells(report):
    """Independent expectation, worked out by hand from the fixture's tests and mutants."""
    assert report.mutants.failures == {
        "mean_over_neurons": {"test_visible", "test_mean_hidden"},
        # ddof=0 turns the visible example's variances [2, 8] into [1, 4]: the visible test
        # records them, so it fails too.
        "variance_ddof0": {"test_visible", "test_variance_hidden"},
        "variance_keepdims": {"test_visible", "test_variance_hidden"},
    }


def test_self_test_fails_when_a_mutant_is_not_caught(tmp_path):
    """A 'mutant' that is secretly correct must be reported as not caught."""
    folder = tmp_path / "mean_variance"
    shutil.copytree(FIXTURE_COURSE / "source" / "mean_variance", folder)
    (folder / "mutants.py").write_text(
        "import numpy as np\nfrom course_tools.grading import Mutant\n\n"
        "def same_variance(responses):\n    return np.var(responses, axis=0, ddof=1)\n\n"
        "MUTANTS = [Mutant('harmless', 'identical to the solution', "
        "{'trial_variance': same_variance}, ['test_variance_hidden'])]\n"
    )
    run = run_mutants(folder / "mean_variance.ipynb", folder / "mutants.py", timeout=30)
    assert run.solution_errors == {}
    assert run.failures == {"harmless": set()}
