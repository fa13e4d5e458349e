"""Mutants: plausible wrong answers that the hidden tests of an assignment must catch.

Each assignment keeps a ``mutants.py`` next to its source notebook (it never reaches students)::

    import numpy as np
    from course_tools.grading import Mutant

    def variance_without_ddof(responses):
        return np.var(responses, axis=0)          # population variance: a classic slip

    MUTANTS = [
        Mutant(
            name="ddof0",
            description="variance with ddof=0 instead of the unbiased ddof=1",
            replacements={"trial_variance": variance_without_ddof},
            must_fail=["test_variance_hidden"],
        ),
    ]

``replacements`` maps a function the student writes to a module-level function of ``mutants.py``
that replaces it; ``must_fail`` lists grade ids of test cells that have to fail with it.
``course-tools check`` executes the solution once, then, in the same kernel, swaps in each mutant,
re-runs the test cells and records which fail.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Mutant", "load_mutants"]


@dataclass(frozen=True)
class Mutant:
    """A named wrong implementation of one or more functions of an assignment.

    Parameters
    ----------
    name : str
        Short identifier, shown in the self-test table.
    description : str
        The mistake in the words of a student's error ("mean over neurons instead of trials").
    replacements : mapping of str to callable
        ``{student_function_name: wrong_function}``; each wrong function is defined at the top
        level of the assignment's ``mutants.py``.
    must_fail : sequence of str
        Grade ids of the test cells that must fail with this mutant (at least one).
    """

    name: str
    description: str
    replacements: Mapping[str, Callable] = field(default_factory=dict)
    must_fail: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"Mutant names must be identifiers, got {self.name!r}.")
        if not self.replacements:
            raise ValueError(
                f"Mutant {self.name!r} replaces nothing: give replacements="
                "{'student_function': wrong_function}."
            )
        for target, function in self.replacements.items():
            if not str(target).isidentifier():
                raise ValueError(
                    f"Mutant {self.name!r}: {target!r} is not a function name of the assignment."
                )
            if not callable(function) or not hasattr(function, "__name__"):
                raise TypeError(
                    f"Mutant {self.name!r}: the replacement for {target!r} must be a function "
                    f"defined in mutants.py, got {function!r}."
                )
        if isinstance(self.must_fail, str) or not self.must_fail:
            raise ValueError(
                f"Mutant {self.name!r}: must_fail must list the grade ids of the test cells "
                f"that catch it, e.g. must_fail=['test_variance_hidden'], got {self.must_fail!r}."
            )
        object.__setattr__(self, "must_fail", tuple(self.must_fail))
        object.__setattr__(self, "replacements", dict(self.replacements))

    def function_names(self) -> dict[str, str]:
        """``{student_function_name: name of the wrong function in mutants.py}``."""
        return {target: function.__name__ for target, function in self.replacements.items()}


def load_mutants(path: str | Path) -> list[Mutant]:
    """Import an assignment's ``mutants.py`` and return its ``MUTANTS`` list.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        ``MUTANTS`` is missing, empty, holds something other than :class:`Mutant`, repeats a
        name, or names a replacement that is not a top-level function of the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No mutants file at {path}. Every assignment needs one: define "
            "MUTANTS = [Mutant(...)] with plausible wrong answers (course_tools.grading.mutants)."
        )
    module_name = f"_course_tools_mutants_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(module_name, None)
    mutants = getattr(module, "MUTANTS", None)
    if not isinstance(mutants, list | tuple) or not mutants:
        raise ValueError(f"{path} must define a non-empty list MUTANTS = [Mutant(...), ...].")
    names = set()
    for mutant in mutants:
        if not isinstance(mutant, Mutant):
            raise ValueError(f"{path}: MUTANTS holds {mutant!r}, expected Mutant objects.")
        if mutant.name in names:
            raise ValueError(f"{path}: two mutants are named {mutant.name!r}.")
        names.add(mutant.name)
        for target, function_name in mutant.function_names().items():
            if getattr(module, function_name, None) is not mutant.replacements[target]:
                raise ValueError(
                    f"{path}: mutant {mutant.name!r} replaces {target!r} with {function_name!r}, "
                    "which is not a top-level function of the file."
                )
    return list(mutants)
