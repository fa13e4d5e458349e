"""``course-tools``: the instructor's command line for the course's nbgrader assignments.

Run ``course-tools --help`` or ``course-tools COMMAND --help``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

DESCRIPTION = """\
Grade the course's assignments with nbgrader, and check them before students see them.

A term, command by command (run from the repository root, or pass --course):
  course-tools references ps1   run the solution, record the reference outputs hidden tests use
  course-tools check ps1        prove the grading right: solution = full marks, release = 0,
                                every wrong answer in mutants.py caught, nothing leaks
  course-tools release ps1      make the student version (nbgrader generate_assignment) and
                                refuse it if it contains solutions, hidden tests or answer files
  nbgrader release_assignment ps1 / nbgrader collect ps1   (nbgrader's own exchange steps)
  course-tools grade ps1        autograde every submission in parallel, write feedback without
                                hidden tests, export grades.csv, list tampered submissions
                                (--workers N or --scheduler ADDRESS: on a Dask cluster)
  course-tools feedback ps1 --release (leak-checked; students fetch their feedback)
"""


def _default_course() -> Path:
    here = Path.cwd()
    if (here / "assignments" / "nbgrader_config.py").is_file():
        return here / "assignments"
    return here


def _add_course(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--course",
        type=Path,
        default=None,
        metavar="PATH",
        help="the nbgrader course folder, holding nbgrader_config.py and source/ "
        "(default: ./assignments if it exists, else the current folder)",
    )


def _add_assignment(parser: argparse.ArgumentParser, *, allow_all: bool) -> None:
    """The assignment to act on; with ``allow_all``, optional when ``--all`` is given."""
    parser.add_argument(
        "assignment", nargs="?" if allow_all else None, help="assignment name (a folder of source/)"
    )
    if allow_all:
        parser.add_argument("--all", action="store_true", help="every assignment of the course")


class _StoreGiven(argparse.Action):
    """Store the value and remember that the option was given (its default is not)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


def _course(args: argparse.Namespace) -> Path:
    from course_tools.grading.conventions import check_course_root

    return check_course_root(args.course or _default_course())


def _assignments(args: argparse.Namespace, root: Path) -> list[str]:
    from course_tools.grading.conventions import assignment_dir, assignment_names

    if getattr(args, "all", False):
        names = assignment_names(root)
        if not names:
            print(f"No assignments in {root / 'source'}: nothing to do.")
        return names
    if not args.assignment:
        raise ValueError("Name an assignment (a folder of source/), or pass --all.")
    assignment_dir(root, args.assignment)
    return [args.assignment]


def cmd_references(args: argparse.Namespace) -> int:
    from course_tools.grading.recording import record_references
    from course_tools.grading.selftest import format_table

    root = _course(args)
    for name in _assignments(args, root):
        changes = record_references(root, name)
        print(f"Reference outputs of {name} ({root / 'source' / name / 'references.npz'}):")
        rows = [
            [c.name, c.status, "" if c.max_abs_change is None else f"{c.max_abs_change:.3g}"]
            for c in changes
        ]
        print(format_table(["quantity", "status", "max change"], rows))
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from course_tools.grading.course import run_nbgrader
    from course_tools.grading.release import export_student_versions, generate_release

    root = _course(args)
    names = _assignments(args, root)
    if args.output is not None:
        zips = export_student_versions(root, args.output, names)
        for name, archive in zips.items():
            print(f"{name}: student version in {Path(args.output) / name}/ and {archive}")
        return 0
    status = 0
    for name in names:
        result = generate_release(root, name)
        if result.clean:
            print(
                f"{name}: released to {result.release_dir} ({result.seconds:.1f} s); "
                "leak check passed."
            )
            if args.to_exchange:
                run_nbgrader(["release_assignment", name, "--force"], root)
                print(f"{name}: copied to the nbgrader exchange; students can fetch it now.")
        else:
            status = 1
            print(f"{name}: LEAK CHECK FAILED, do not give {result.release_dir} to students:")
            for leak in result.leaks:
                print(f"  {leak.path}: {leak.reason}")
    return status


def cmd_check(args: argparse.Namespace) -> int:
    from course_tools.grading.pool import start_workers_early

    start_workers_early()
    from course_tools.grading.selftest import self_test

    root = _course(args)
    status = 0
    for name in _assignments(args, root):
        report = self_test(root, name, jobs=args.jobs, progress=not args.quiet)
        verdict = (
            "all checks passed" if report.passed else f"{len(report.failed())} check(s) FAILED"
        )
        print(f"\nSelf-test of {name}: {verdict} ({report.seconds:.0f} s)")
        print(report.table())
        status |= 0 if report.passed else 1
    return status


def cmd_grade(args: argparse.Namespace) -> int:
    from course_tools.grading.pool import start_workers_early

    start_workers_early()
    from course_tools.grading.pipeline import grade_assignment
    from course_tools.grading.selftest import format_table

    root = _course(args)
    name = _assignments(args, root)[0]
    report = grade_assignment(
        root,
        name,
        jobs=args.jobs,
        students=args.student or None,
        grades_csv=args.csv,
        progress=not args.quiet,
        sandbox=not args.no_sandbox,
        cluster=args.workers or args.scheduler,
    )
    run = report.autograde
    where = (
        f"on the {run.cluster} ({run.jobs} worker(s))" if run.cluster else f"with {run.jobs} job(s)"
    )
    print(f"Autograded {len(run.outcomes)} submission(s) of {name} {where} in {run.seconds:.1f} s.")
    if run.sandboxed:
        print("Sandbox: bubblewrap (each kernel unprivileged, no network, own processes only).")
    else:
        print(
            "WARNING: graded WITHOUT a sandbox (--no-sandbox): student code ran as you and could "
            "read and change course files. Do not trust these grades for a real class."
        )
    notes = [[n.student, n.notebook, n.kind, n.message] for o in run.outcomes for n in o.notes]
    if notes:
        print("\nSubmissions that needed attention:")
        print(format_table(["student", "notebook", "what", "details"], notes))
    for outcome in run.failed:
        tail = "\n    ".join(outcome.log.strip().splitlines()[-8:])
        print(f"\nAutograde FAILED for {outcome.student}:\n    {tail}")
    if report.feedback_problems:
        print("\nFeedback files removed because they showed hidden tests or instructor files:")
        for problem in report.feedback_problems:
            print(f"  {problem}")
    print(
        f"\nFeedback: {report.feedback_dir}/<student>/{name}/  (checked for leaks; return it "
        f"with `course-tools feedback {name} --release`)"
    )
    print(f"Grades:   {report.grades_csv}")
    if report.tamper:
        print(f"\nTamper report ({report.tamper_csv}):")
        rows = [[f.student, f.notebook, f.cell, str(f.line), f.reason] for f in report.tamper]
        print(format_table(["student", "notebook", "cell", "line", "reason"], rows))
    else:
        print(f"Tamper report: nothing suspicious ({report.tamper_csv}).")
    return 1 if run.failed or report.feedback_problems else 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from course_tools.grading.pool import start_workers_early

    start_workers_early()
    from course_tools.grading.pipeline import feedback_assignment

    root = _course(args)
    name = _assignments(args, root)[0]
    report = feedback_assignment(root, name, students=args.student or None, release=args.release)
    print(f"Feedback of {name} generated for {len(report.students)} student(s) and scanned.")
    if report.problems:
        print("Feedback files removed because they showed hidden tests or instructor files:")
        for problem in report.problems:
            print(f"  {problem}")
    if args.release:
        print("Released to the exchange." if report.released else "Release FAILED:\n" + report.log)
    return 1 if report.problems or (args.release and not report.released) else 0


def cmd_tamper(args: argparse.Namespace) -> int:
    from course_tools.grading.selftest import format_table
    from course_tools.grading.tamper import scan_submissions

    root = _course(args)
    name = _assignments(args, root)[0]
    findings = scan_submissions(root, name, students=args.student or None)
    if not findings:
        print(f"No tampering found in the submissions of {name}.")
        return 0
    rows = [[f.student, f.notebook, f.cell, str(f.line), f.reason] for f in findings]
    print(format_table(["student", "notebook", "cell", "line", "reason"], rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``course-tools`` (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="course-tools",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "references",
        help="record the reference outputs that hidden tests compare against",
        description="Run the assignment's solution notebook and record every value its hidden "
        "tests pass to check_reference() into source/<a>/references.npz. Do this after "
        "changing the solution or a hidden test; the file is replaced only if the whole "
        "solution runs without error. The table says which quantities are new or changed.",
    )
    _add_assignment(p, allow_all=True)
    _add_course(p)
    p.set_defaults(func=cmd_references)

    p = sub.add_parser(
        "release",
        help="make the student version and check it for leaks",
        description="Run nbgrader generate_assignment (solutions and hidden tests removed, the "
        "assignment recorded in the gradebook), then check the result: it fails if the "
        "release contains solution text, hidden test text, references.npz, mutants.py or any "
        "file that is not part of the assignment. With --to-exchange the checked release is "
        "copied to the nbgrader exchange (nbgrader release_assignment), so students can fetch "
        "it. With --output DIR the student versions go to DIR/<a>/ and DIR/<a>.zip for the "
        "book, generated in a scratch copy (the course folder is not touched).",
    )
    _add_assignment(p, allow_all=True)
    p.add_argument("--output", type=Path, metavar="DIR", help="write student versions to DIR")
    p.add_argument(
        "--to-exchange",
        action="store_true",
        help="after a clean leak check, run nbgrader release_assignment",
    )
    _add_course(p)
    p.set_defaults(func=cmd_release)

    p = sub.add_parser(
        "check",
        help="self-test an assignment before releasing it (prints a table)",
        description="Prove that an assignment grades correctly, in a scratch copy of the course: "
        "the solution autogrades to full marks; the untouched student version autogrades to "
        "zero without crashing or timing out; every wrong answer in mutants.py fails the test "
        "cells it names and at least one hidden test, and every hidden test catches at least "
        "one; the release leaks nothing; the slowest solution cell uses at most half the "
        "per-cell timeout. Exit status 1 if any check fails.",
    )
    _add_assignment(p, allow_all=True)
    p.add_argument("--jobs", type=int, default=2, help="notebooks graded at once (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_course(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "grade",
        help="autograde all submissions, write feedback and grades.csv",
        description="Autograde every collected submission (submitted/<student>/<a>/), several "
        "students at once; each student's grades go into the gradebook exactly once. A "
        "notebook submitted under another name is graded under the right one, and a crash, "
        "an endless loop or a deleted cell costs only the points that depend on it. Then "
        "write feedback (feedback/<student>/<a>/*.html) without hidden tests or reference "
        "values, export all grades to CSV, and list submissions that tamper with grading. "
        "Each kernel runs in a bubblewrap sandbox (unprivileged, no network, a private copy "
        "of the submission, no instructor file), and the points are decided by the grader "
        "outside it; where the sandbox cannot start, grading is refused unless --no-sandbox. "
        "With --workers N or --scheduler ADDRESS each submission is one task on a Dask "
        "cluster, graded the same way in its worker's sandbox; the grades come back to this "
        "command, which alone writes the gradebook once every task is done. "
        "Exit status 1 if a submission could not be graded.",
    )
    _add_assignment(p, allow_all=False)
    p.add_argument(
        "--jobs",
        type=int,
        default=2,
        action=_StoreGiven,
        help="students graded at once on this machine (default 2; at most the number of CPU cores)",
    )
    on_dask = p.add_mutually_exclusive_group()
    on_dask.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="grade on a local Dask cluster of N single-threaded worker processes, one task "
        "per submission (needs course-tools[cluster]); instead of --jobs",
    )
    on_dask.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on a running Dask cluster, e.g. tcp://host:8786 (dask-jobqueue on Slurm, "
        "dask-kubernetes, `dask scheduler`): its workers run with --nthreads 1 in this "
        "environment and see the course folder at the same path (a shared filesystem); "
        "a dead worker's submission is graded again on another, and only this command writes "
        "the gradebook",
    )
    p.add_argument(
        "--student",
        action="append",
        metavar="ID",
        help="grade only this student (repeat for several)",
    )
    p.add_argument(
        "--csv",
        type=Path,
        default=None,
        metavar="PATH",
        help="where to write the grades (default <course>/grades.csv)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run student code WITHOUT the bubblewrap sandbox (only where it cannot start; "
        "the summary says so)",
    )
    _add_course(p)
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser(
        "feedback",
        help="the return step: regenerate feedback, scan it for leaks, release it",
        description="Regenerate the feedback of graded submissions (nbgrader generate_feedback, "
        "hidden tests removed), scan every file for hidden test lines and instructor files "
        "and delete any that leak, then with --release hand the checked feedback to the "
        "exchange (nbgrader release_feedback). Use this instead of the raw nbgrader "
        "commands, which check nothing. Exit status 1 if a leak was found.",
    )
    _add_assignment(p, allow_all=False)
    p.add_argument("--student", action="append", metavar="ID", help="only this student")
    p.add_argument("--release", action="store_true", help="release the checked feedback")
    _add_course(p)
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser(
        "tamper",
        help="list submissions that tamper with the tests",
        description="Read every submitted notebook and list, with the cell and line, code that "
        "redefines the grading helpers, numpy's testing functions or builtins, monkeypatches "
        "them, or edits or deletes locked cells. Nothing is graded or changed. "
        "(`course-tools grade` prints the same report.)",
    )
    _add_assignment(p, allow_all=False)
    p.add_argument("--student", action="append", metavar="ID", help="only this student")
    _add_course(p)
    p.set_defaults(func=cmd_tamper)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``course-tools`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "jobs", 1) < 1:
        parser.error("--jobs must be at least 1")
    if getattr(args, "workers", None) is not None and args.workers < 1:
        parser.error(f"--workers must be at least 1 (a local Dask cluster), got {args.workers}")
    on_dask = getattr(args, "workers", None) is not None or getattr(args, "scheduler", None)
    if on_dask and getattr(args, "jobs_given", False):
        parser.error(
            "--jobs grades with local processes, --workers/--scheduler on a Dask cluster: give "
            "one of them (e.g. --workers 4 instead of --jobs 4)"
        )
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"course-tools {args.command}: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        if (error.name or "").startswith("course_tools"):
            raise
        # The commands run nbgrader, which `pip install course-tools` alone does not bring.
        print(
            f"course-tools {args.command}: {error}. The instructor's commands need the grading "
            "tools: pip install 'course-tools[grading]' (from a clone: pip install -e "
            "'.[grading]'), or the course environment, environment.yml.",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
