"""Find submissions that tamper with grading: redefined helpers, numpy testing, builtins, locks.

Tests pass when nothing raises, so a student can "pass" by replacing what the tests call::

    np.testing.assert_allclose = lambda *args, **kwargs: None
    check_reference = print
    AssertionError = Warning

This module reads every code cell of a submission with :mod:`ast` and reports, with the cell:

* assignments, ``def``, ``class``, imports or ``del`` at module level that rebind a name the
  locked cells define (``np``, ``check_reference``...), a builtin (``round``, ``AssertionError``),
  or any ``assert_*`` name;
* assignments to attributes of ``numpy``/``np``, ``builtins``, ``course_tools`` and the grading
  helpers (``np.testing.assert_allclose = ...``), and ``setattr`` / ``delattr`` on them;
* any use of ``__builtins__``, ``sys.modules`` or ``globals()`` item assignment, ``mock.patch``,
  and ``exec`` / ``eval`` / ``compile`` (which could hide the above);
* locked cells whose source differs from the assignment (nbgrader silently restores them at
  autograde, so the edit does not change the grade, but the instructor should know);
* functions the assignment asks students to write themselves that call a ready-made
  implementation (:mod:`course_tools.grading.readymade`), with the cell where it happens.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from pathlib import Path

from course_tools.grading.conventions import BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS
from course_tools.grading.notebooks import nbgrader_meta, read_notebook
from course_tools.grading.readymade import find_ready_made
from course_tools.grading.submissions import find_students

__all__ = ["TamperFinding", "scan_notebook", "scan_submissions"]

BUILTIN_NAMES = frozenset(name for name in dir(builtins) if not name.startswith("_"))
HELPER_NAMES = frozenset({"check_reference", "ReferenceMismatch", "load_references"})
PROTECTED_MODULES = frozenset({"np", "numpy", "builtins", "course_tools", "nbgrader"})
DYNAMIC_CALLS = frozenset({"exec", "eval", "compile"})


@dataclass(frozen=True)
class TamperFinding:
    """One suspicious construct in a submission.

    Attributes
    ----------
    student, notebook : str
    cell : str
        nbgrader grade id of the cell, or ``"cell <index>"`` for cells without one.
    line : int
        Line in the cell (1-based; 0 for whole-cell findings).
    reason : str
    """

    student: str
    notebook: str
    cell: str
    line: int
    reason: str


def _python_source(cell_source: str) -> str:
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(cell_source)
    except Exception:  # IPython missing or a transform bug: fall back to the raw text
        return cell_source


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:
        return "<expression>"


class _Visitor(ast.NodeVisitor):
    def __init__(self, protected_names: frozenset[str]) -> None:
        self.protected = protected_names
        self.aliases: set[str] = set()  # e.g. npt after `import numpy.testing as npt`
        self.findings: list[tuple[int, str]] = []
        self.depth = 0  # > 0 inside a function or class body

    def _flag(self, node: ast.AST, reason: str) -> None:
        self.findings.append((getattr(node, "lineno", 0), reason))

    def _bind(self, node: ast.AST, name: str) -> None:
        if self.depth:
            return
        if name in self.protected or name in HELPER_NAMES:
            self._flag(node, f"redefines {name!r}, which the assignment's locked cells provide")
        elif name in BUILTIN_NAMES:
            self._flag(node, f"redefines the builtin {name!r}")
        elif name.startswith("assert_"):
            self._flag(node, f"defines {name!r}, a name of numpy's testing functions")

    def _target(self, target: ast.AST, node: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self._bind(node, target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self._target(element, node)
        elif isinstance(target, ast.Starred):
            self._target(target.value, node)
        elif isinstance(target, ast.Attribute | ast.Subscript):
            root = _root_name(target)
            suspects = PROTECTED_MODULES | HELPER_NAMES | self.protected | self.aliases
            namespace = isinstance(target, ast.Subscript) and _dotted(target.value) in {
                "sys.modules",
                "globals()",
                "vars()",
            }
            if root in suspects or root == "__builtins__" or namespace:
                self._flag(node, f"assigns to {_dotted(target)}")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._target(target, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._target(node.target, node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._target(node.target, node)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._target(target, node)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self._target(node.target, node)
        self.generic_visit(node)

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            if item.optional_vars is not None:
                self._target(item.optional_vars, node)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            if alias.asname and alias.name.split(".")[0] in PROTECTED_MODULES:
                self.aliases.add(alias.asname)
            if (
                alias.asname
                and alias.asname in self.protected | PROTECTED_MODULES
                and (alias.name.split(".")[0] != "numpy" or alias.asname not in {"np", "numpy"})
            ):
                self._flag(node, f"imports {alias.name} as {alias.asname!r}")
            elif bound not in PROTECTED_MODULES:
                self._bind(node, bound)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        genuine = (node.module or "").split(".")[0] in {"numpy", "course_tools"}
        for alias in node.names:
            bound = alias.asname or alias.name
            if (node.module or "").split(".")[0] in PROTECTED_MODULES and alias.name == "testing":
                self.aliases.add(bound)
            if genuine and (alias.asname is None or alias.asname == alias.name):
                continue  # importing the real function under its own name is harmless
            self._bind(node, bound)
        self.generic_visit(node)

    def _scope(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._bind(node, node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._scope(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._bind(node, node.name)
        self._scope(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scope(node)

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            if name in self.protected or name in BUILTIN_NAMES or name in HELPER_NAMES:
                self._flag(node, f"declares {name!r} global (to rebind it inside a function)")

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "__builtins__":
            self._flag(node, "uses __builtins__")

    def visit_Call(self, node: ast.Call) -> None:
        func = _dotted(node.func)
        if func in {"setattr", "delattr"} and node.args:
            root = _root_name(node.args[0])
            suspects = PROTECTED_MODULES | HELPER_NAMES | self.protected | self.aliases
            if root in suspects or root == "__builtins__":
                self._flag(node, f"calls {func} on {_dotted(node.args[0])}")
        elif func in DYNAMIC_CALLS:
            self._flag(node, f"runs code from a string with {func}() (could hide tampering)")
        elif func.endswith("patch") or ".patch." in func:
            self._flag(node, f"monkeypatches with {func}()")
        self.generic_visit(node)


def _locked_lines(source: str) -> list[str]:
    lines, hidden = [], False
    for line in source.split("\n"):
        if BEGIN_HIDDEN_TESTS in line:
            hidden = True
        elif END_HIDDEN_TESTS in line:
            hidden = False
        elif not hidden and line.strip():
            lines.append(line.rstrip())
    return lines


def _protected_names(source_nb) -> frozenset[str]:
    names = set()
    for cell in source_nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" or not meta.get("locked") or meta.get("grade"):
            continue
        try:
            tree = ast.parse(_python_source(cell.source))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name.split(".")[0]) for a in node.names)
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return frozenset(names)


def scan_notebook(
    submitted: str | Path, source: str | Path, *, student: str = ""
) -> list[TamperFinding]:
    """Tamper findings for one submitted notebook, compared with its source notebook."""
    nb, source_nb = read_notebook(submitted), read_notebook(source)
    name = Path(source).name
    protected = _protected_names(source_nb)
    locked = {
        nbgrader_meta(c)["grade_id"]: c
        for c in source_nb.cells
        if nbgrader_meta(c).get("locked") and nbgrader_meta(c).get("grade_id")
    }
    findings = []
    seen_ids = set()
    for index, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        label = meta.get("grade_id") or f"cell {index}"
        grade_id = meta.get("grade_id")
        if grade_id in locked:
            seen_ids.add(grade_id)
            original = locked[grade_id]
            if _locked_lines(cell.source) != _locked_lines(original.source):
                findings.append(TamperFinding(student, name, label, 0, "locked cell edited"))
            if cell.cell_type != original.cell_type:
                findings.append(TamperFinding(student, name, label, 0, "locked cell type changed"))
            continue
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_python_source(cell.source))
        except SyntaxError:
            continue
        visitor = _Visitor(protected)
        visitor.visit(tree)
        findings += [
            TamperFinding(student, name, label, line, why) for line, why in visitor.findings
        ]
    findings += [
        TamperFinding(student, name, grade_id, 0, "locked cell deleted")
        for grade_id in locked
        if grade_id not in seen_ids
    ]
    findings += [
        TamperFinding(student, name, use.cell, use.line, f"ready-made {use.function}: {use.reason}")
        for use in find_ready_made(nb, source_nb)
    ]
    return findings


def scan_submissions(
    course_root: str | Path, assignment: str, students: list[str] | None = None
) -> list[TamperFinding]:
    """Scan every submitted notebook of an assignment (renamed notebooks included).

    Returns
    -------
    list of TamperFinding
        Sorted by student, notebook, cell order.
    """
    root = Path(course_root)
    sources = sorted((root / "source" / assignment).glob("*.ipynb"))
    by_name = {p.name: p for p in sources}
    findings = []
    for student in students if students is not None else find_students(root, assignment):
        folder = root / "submitted" / student / assignment
        submitted = sorted(folder.glob("*.ipynb"))
        for path in submitted:
            source = by_name.get(path.name)
            if source is None and len(sources) == 1 and len(submitted) == 1:
                source = sources[0]
            if source is None:
                continue
            try:
                findings += scan_notebook(path, source, student=student)
            except Exception as error:  # unreadable notebook: report, keep scanning the others
                findings.append(TamperFinding(student, path.name, "-", 0, f"unreadable: {error}"))
    return findings
