"""Find answers that call a ready-made implementation instead of the student's own code.

Some assignments ask students to write what ``course_tools`` or scikit-learn already provides
(``explainable_variance``, ridge regression, k-fold indices). The source notebook names those
functions in its test cells with ``assert_own_code(function)``; that in-kernel check only
searches the function's text for "course_tools", which an alias, ``importlib`` or a module
reached through another module's attribute defeats, and which the student's kernel can patch.

Here the grader reads the submitted answer cells with :mod:`ast`, outside the kernel, and
follows every function named in ``assert_own_code(...)`` through the student's own helpers it
calls. It reports, with the cell and line:

* an import of a ready-made package (:data:`READY_MADE`) in any form (``import a.b as c``,
  ``from a.b import f as g``, inside or outside the function), when the function uses a name it
  bound;
* attribute access that reaches such a package (``np.lib.__dict__``... is not one, but
  ``m.explainable_variance`` with ``m`` an alias of ``course_tools.metrics`` is);
* a dynamic import (``importlib.import_module``, ``__import__``, ``sys.modules[...]``), which
  could reach anything.

NumPy, SciPy and torch helpers the assignment allows are never flagged. A finding is a flag for
the instructor's review, not a grade: the points are decided by the hidden tests.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from course_tools.grading.notebooks import nbgrader_meta

__all__ = ["READY_MADE", "ReadyMadeUse", "find_ready_made", "own_code_functions"]

#: Top-level packages whose implementations a "write it yourself" function must not call.
READY_MADE = frozenset({"course_tools", "sklearn", "himalaya"})
DYNAMIC_IMPORTS = frozenset({"importlib.import_module", "__import__", "import_module"})


@dataclass(frozen=True)
class ReadyMadeUse:
    """One way a function reaches a ready-made implementation.

    Attributes
    ----------
    function : str
        The function that must be the student's own.
    cell : str
        Grade id of the answer cell where the use is.
    line : int
        Line in that cell.
    reason : str
    """

    function: str
    cell: str
    line: int
    reason: str


def _parse(source: str) -> ast.Module | None:
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # IPython missing or a transform bug: parse the raw text
        pass
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def own_code_functions(source_nb) -> list[str]:
    """Functions the source notebook's test cells pass to ``assert_own_code(...)``."""
    names = []
    for cell in source_nb.cells:
        if cell.cell_type != "code" or not nbgrader_meta(cell).get("grade"):
            continue
        tree = _parse(cell.source)
        for node in ast.walk(tree) if tree else ():
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "assert_own_code"
            ):
                names += [a.id for a in node.args if isinstance(a, ast.Name)]
    return list(dict.fromkeys(names))


def _package(module: str | None) -> str | None:
    top = (module or "").split(".")[0]
    return top if top in READY_MADE else None


def _bindings(tree: ast.AST) -> dict[str, str]:
    """Names bound to ready-made modules or objects by imports anywhere in ``tree``."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _package(alias.name):
                    name = alias.asname or alias.name.split(".")[0]
                    bound[name] = f"import {alias.name}" + (
                        f" as {alias.asname}" if alias.asname else ""
                    )
        elif isinstance(node, ast.ImportFrom) and _package(node.module):
            for alias in node.names:
                bound[alias.asname or alias.name] = f"from {node.module} import {alias.name}" + (
                    f" as {alias.asname}" if alias.asname else ""
                )
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = ast.unparse(node.value.func)
            if func in DYNAMIC_IMPORTS or func.endswith(".import_module"):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        bound[target.id] = f"{target.id} = {ast.unparse(node.value)}"
    return bound


def _uses(function: ast.AST, module_bindings: dict[str, str]) -> list[tuple[int, str]]:
    """Ready-made uses inside one function definition."""
    found = []
    local = _bindings(function)
    for node in ast.walk(function):
        if isinstance(node, ast.Import | ast.ImportFrom) and node is not function:
            names = [a.name for a in node.names]
            module = node.module if isinstance(node, ast.ImportFrom) else names[0]
            if _package(module) or any(_package(n) for n in names):
                found.append(
                    (node.lineno, f"imports a ready-made implementation: {local_line(node)}")
                )
        elif isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            if func in DYNAMIC_IMPORTS or func.endswith(".import_module"):
                found.append((node.lineno, f"imports a module dynamically: {ast.unparse(node)}"))
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "sys.modules":
            found.append((node.lineno, f"reaches a module through {ast.unparse(node)}"))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id in module_bindings and node.id not in local:
                found.append((node.lineno, f"uses {node.id!r} from `{module_bindings[node.id]}`"))
        elif isinstance(node, ast.Attribute) and any(
            part in READY_MADE for part in ast.unparse(node).split(".")
        ):
            found.append((node.lineno, f"reaches a ready-made package: {ast.unparse(node)}"))
    return found


def local_line(node: ast.AST) -> str:
    return ast.unparse(node).splitlines()[0]


def _code_cells(nb, *, answers: bool) -> list[tuple[str, ast.Module]]:
    """Parsed answer cells (``answers=True``) or locked and test cells, with their labels."""
    cells = []
    for index, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        is_answer = not meta.get("locked") and not meta.get("grade")
        if cell.cell_type == "code" and is_answer == answers:
            tree = _parse(cell.source)
            if tree is not None:
                cells.append((meta.get("grade_id") or f"cell {index}", tree))
    return cells


def find_ready_made(submitted_nb, source_nb) -> list[ReadyMadeUse]:
    """Ready-made uses in the functions a source notebook asks students to write themselves.

    Parameters
    ----------
    submitted_nb, source_nb : NotebookNode
        The student's notebook and the assignment's source notebook.

    Returns
    -------
    list of ReadyMadeUse
        One per use, in cell order; empty for honest work.
    """
    required = own_code_functions(source_nb)
    if not required:
        return []
    answers = _code_cells(submitted_nb, answers=True)
    # Names the instructor's cells bind to ready-made code (a test cell's RidgeCV is in the
    # kernel when the function runs) count too, except those the solution itself uses: those
    # are helpers the assignment provides.
    allowed = {
        n.id
        for _, tree in _code_cells(source_nb, answers=True)
        for n in ast.walk(tree)
        if isinstance(n, ast.Name)
    }
    module_bindings: dict[str, str] = {}
    for _, tree in _code_cells(source_nb, answers=False):
        module_bindings.update({k: v for k, v in _bindings(tree).items() if k not in allowed})
    defined: dict[str, tuple[str, ast.AST]] = {}
    for label, tree in answers:
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom | ast.Assign):
                module_bindings.update(_bindings(ast.Module(body=[node], type_ignores=[])))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined[node.name] = (label, node)
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if (
                        isinstance(target, ast.Name)
                        and isinstance(node.value, ast.Name)
                        and node.value.id in module_bindings  # f = ready_made_alias
                    ):
                        module_bindings[target.id] = module_bindings[node.value.id]
    uses = []
    for name in required:
        seen, todo = set(), [name]
        while todo:  # the function and the student's own helpers it calls
            current = todo.pop()
            if current in seen or current not in defined:
                continue
            seen.add(current)
            label, node = defined[current]
            for line, reason in _uses(node, module_bindings):
                uses.append(ReadyMadeUse(name, label, line, reason))
            todo += [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in defined]
    return sorted(set(uses), key=lambda u: (u.function, u.cell, u.line, u.reason))
