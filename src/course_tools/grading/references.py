"""Record reference outputs from the solution, and compare student results with them.

Hidden tests call :func:`check_reference` on results computed from inputs the student never sees
(held-out seeds drawn inside the hidden test cell)::

    ### BEGIN HIDDEN TESTS
    rng = np.random.default_rng(90210)          # a held-out seed
    held_out = rng.normal(size=(23, 7))
    check_reference("trial_variance_held_out", trial_variance(held_out), rtol=1e-6)
    ### END HIDDEN TESTS

Inside a Jupyter kernel the call only *records* the value: it publishes it as a display output of
type :data:`RECORDING_MIME` in the cell that made it. The kernel never sees the references, so
nothing a student patches in it (numpy, torch, this module) can turn a wrong value into a pass:

* ``course-tools references <a>`` runs the solution and stores every recorded value, with the
  cell that recorded it and its tolerances, in ``references.npz`` (:mod:`.recording`).
* While grading, the grader process reads the recordings back out of each test cell's outputs and
  compares them with ``references.npz`` (:mod:`.verdict`). A mismatch fails the cell with a
  message that names the quantity and says by how much it is off and what tolerance applies, but
  never prints the reference values themselves.

Outside a kernel (a script, a test), the call compares at once with a references file given by
``path``, ``$COURSE_TOOLS_REFERENCES`` or ``references.npz`` in the working directory, and raises
:class:`ReferenceMismatch`; with ``$COURSE_TOOLS_RECORD_REFERENCES`` set it appends to that file.
"""

from __future__ import annotations

import base64
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_tools.grading.conventions import RECORD_ENV_VAR, REFERENCES_ENV_VAR, REFERENCES_FILE

__all__ = [
    "MANIFEST_KEY",
    "RECORDING_MIME",
    "ReferenceChange",
    "ReferenceMismatch",
    "check_reference",
    "compare_reference_files",
    "decode_array",
    "describe_mismatch",
    "encode_array",
    "load_manifest",
    "load_references",
    "save_references",
]

#: MIME type of the display output a recording kernel publishes for each checked value.
RECORDING_MIME = "application/vnd.course-tools.recording+json"
#: Key in ``references.npz`` of a JSON text: ``{name: {"notebook", "cell", "rtol", "atol"}}``.
MANIFEST_KEY = "__manifest__"

_CACHE: dict[tuple[str, int], dict[str, np.ndarray]] = {}
_MANIFESTS: dict[tuple[str, int], dict[str, dict]] = {}


class ReferenceMismatch(AssertionError):
    """A result differs from its recorded reference by more than the tolerance."""


def _as_array(name: str, value: object) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name!r}: the result could not be turned into a numeric array ({error}). "
            "Return a number or a NumPy array."
        ) from None
    if array.dtype.kind not in "biufc":
        raise TypeError(
            f"{name!r}: expected a number or a numeric array, got {type(value).__name__} with "
            f"dtype {array.dtype}. Return a NumPy array of numbers (or bools)."
        )
    return array


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(
            f"Reference names must be Python identifiers (letters, digits, '_'), got {name!r}."
        )
    return name


def load_references(path: str | Path) -> dict[str, np.ndarray]:
    """Read a references file into a ``{name: array}`` dict (cached while the file is unchanged).

    Raises
    ------
    FileNotFoundError
        When the file does not exist, with a hint about where references come from.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No reference outputs at {path}. Reference outputs exist only for instructors and "
            "for grading: students never have them (hidden tests run only when grading). "
            "Instructors create them with `course-tools references <assignment>`."
        )
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _CACHE:
        with np.load(path, allow_pickle=False) as data:
            _CACHE[key] = {name: data[name] for name in data.files if name != MANIFEST_KEY}
            if MANIFEST_KEY in data.files:
                _MANIFESTS[key] = json.loads(str(data[MANIFEST_KEY]))
    return _CACHE[key]


def load_manifest(path: str | Path) -> dict[str, dict]:
    """Which notebook and cell record each reference, and with which tolerances.

    Returns
    -------
    dict
        ``{name: {"notebook": str, "cell": grade id, "rtol": float, "atol": float}}``; empty for
        a file written before manifests existed (regenerate it with ``course-tools references``).
    """
    path = Path(path)
    load_references(path)
    return dict(_MANIFESTS.get((str(path.resolve()), path.stat().st_mtime_ns), {}))


def save_references(
    path: str | Path, values: dict[str, np.ndarray], manifest: dict[str, dict] | None = None
) -> None:
    """Write a references file atomically (with its manifest, when given)."""
    path = Path(path)
    if manifest is not None:
        values = {**values, MANIFEST_KEY: np.array(json.dumps(manifest, sort_keys=True))}
    _save_references(path, values)


def _save_references(path: Path, values: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(handle)
    try:
        np.savez(tmp, **values)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; references are shared course files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _record(name: str, array: np.ndarray, path: Path) -> None:
    values = dict(load_references(path)) if path.is_file() else {}
    if name in values:
        raise ValueError(
            f"Reference {name!r} is recorded twice in one run. Each check_reference call in an "
            "assignment needs its own name."
        )
    values[name] = array
    _save_references(path, values)


def describe_mismatch(
    name: str, actual: np.ndarray, desired: np.ndarray, rtol: float, atol: float
) -> str | None:
    if actual.shape != desired.shape:
        return (
            f"{name}: the result has shape {actual.shape} but should have shape {desired.shape}. "
            "Check which axis you reduce over and whether the output is transposed."
        )
    if desired.dtype.kind == "b" or actual.dtype.kind == "b":
        wrong = int(np.count_nonzero(actual.astype(bool) != desired.astype(bool)))
        if wrong:
            return f"{name}: {wrong} of {desired.size} True/False values differ from the reference."
        return None
    actual_nan, desired_nan = np.isnan(actual), np.isnan(desired)
    if np.any(actual_nan != desired_nan):
        extra = int(np.count_nonzero(actual_nan & ~desired_nan))
        missing = int(np.count_nonzero(~actual_nan & desired_nan))
        return (
            f"{name}: NaN in the wrong places ({extra} unexpected NaN, {missing} numbers where "
            f"NaN is expected, out of {desired.size} values)."
        )
    close = np.isclose(actual, desired, rtol=rtol, atol=atol, equal_nan=True)
    if np.all(close):
        return None
    finite = np.isfinite(actual) & np.isfinite(desired)
    abs_err = np.where(finite, np.abs(actual - desired), np.inf)
    abs_err = np.where(close, 0.0, abs_err)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_err = np.where(desired != 0, abs_err / np.abs(desired), np.inf)
    rel_err = np.where(close, 0.0, rel_err)
    worst = np.unravel_index(int(np.argmax(abs_err)), abs_err.shape) if abs_err.ndim else ()
    where = f" (largest at index {tuple(int(i) for i in worst)})" if abs_err.ndim else ""
    return (
        f"{name} is off: max absolute error {float(np.max(abs_err)):.3g}{where}, "
        f"max relative error {float(np.max(rel_err)):.3g}; allowed: rtol={rtol:g}, atol={atol:g}. "
        f"{int(np.count_nonzero(~close))} of {close.size} values are outside the tolerance."
    )


def check_reference(
    name: str,
    value: object,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-12,
    path: str | Path | None = None,
) -> None:
    """Compare a result with its recorded reference (or record it, for the instructor).

    Parameters
    ----------
    name : str
        Name of the quantity, a Python identifier unique within the assignment. It appears in
        the failure message, so make it say what was computed (``"fev_held_out"``).
    value : array_like
        The student's result: a number or a numeric array of any shape.
    rtol, atol : float
        Relative and absolute tolerance, as in :func:`numpy.isclose`: an element passes when
        ``|value - reference| <= atol + rtol * |reference|``. Choose them to accept correct
        implementations that differ in floating-point detail (summation order, solver).
    path : str or Path, optional
        References file. Default: ``$COURSE_TOOLS_REFERENCES`` or ``references.npz`` in the
        working directory (the assignment folder while grading).

    Raises
    ------
    ReferenceMismatch
        The result differs from the reference; the message gives the shape or the maximum
        absolute and relative errors and the tolerance, never the reference values.
    TypeError
        ``value`` is not numeric.
    ValueError
        ``name`` is not an identifier, or a tolerance is negative.
    FileNotFoundError
        No references file exists (students never have one).
    """
    name = _check_name(name)
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(f"Tolerances must be >= 0, got rtol={rtol!r}, atol={atol!r}.")
    array = _as_array(name, value)
    if path is None and _publish_recording(name, array, rtol=rtol, atol=atol):
        return
    record_path = os.environ.get(RECORD_ENV_VAR)
    if record_path and path is None:
        _record(name, array, Path(record_path))
        return
    ref_path = Path(path or os.environ.get(REFERENCES_ENV_VAR) or REFERENCES_FILE)
    references = load_references(ref_path)
    if name not in references:
        raise KeyError(
            f"No reference named {name!r} in {ref_path}. Regenerate the references with "
            "`course-tools references <assignment>` after adding a check."
        )
    message = describe_mismatch(name, array, references[name], rtol, atol)
    if message is not None:
        raise ReferenceMismatch(message)


def encode_array(array: np.ndarray) -> str:
    """An array as base64 text of its ``.npy`` bytes (no pickles)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_array(text: str, *, max_bytes: int) -> np.ndarray:
    """Inverse of :func:`encode_array`; refuses pickles and payloads over ``max_bytes``.

    Raises
    ------
    ValueError
        The text is not a base64 ``.npy`` payload of at most ``max_bytes`` bytes.
    """
    if not isinstance(text, str) or len(text) > 4 * (max_bytes // 3 + 1):
        raise ValueError(f"a recording must be base64 text of at most {max_bytes} bytes")
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    return np.load(io.BytesIO(raw), allow_pickle=False)


def _publish_recording(name: str, array: np.ndarray, *, rtol: float, atol: float) -> bool:
    """Publish the value as a recording output when running in a Jupyter kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # no IPython: not in a kernel
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    from IPython.display import publish_display_data

    payload = {"name": name, "rtol": rtol, "atol": atol, "npy": encode_array(array)}
    publish_display_data(
        {RECORDING_MIME: payload, "text/plain": f"(recorded {name} for grading)"},
    )
    return True


@dataclass(frozen=True)
class ReferenceChange:
    """How one recorded quantity changed between two reference files.

    Attributes
    ----------
    name : str
        Quantity name.
    status : {"new", "removed", "changed", "unchanged"}
        What happened to it.
    max_abs_change : float or None
        Largest absolute difference for ``"changed"`` quantities of equal shape, else None.
    """

    name: str
    status: str
    max_abs_change: float | None = None


def compare_reference_files(old: str | Path | None, new: str | Path) -> list[ReferenceChange]:
    """List what changed between an old references file (or None) and a new one."""
    old_values = load_references(old) if old is not None and Path(old).is_file() else {}
    new_values = load_references(new)
    changes = []
    for name in sorted(set(old_values) | set(new_values)):
        if name not in old_values:
            changes.append(ReferenceChange(name, "new"))
        elif name not in new_values:
            changes.append(ReferenceChange(name, "removed"))
        else:
            a, b = old_values[name], new_values[name]
            same = a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
            if same:
                changes.append(ReferenceChange(name, "unchanged"))
            elif a.shape == b.shape and a.dtype.kind in "biufc" and b.dtype.kind in "biufc":
                diff = np.abs(a.astype(np.complex128) - b.astype(np.complex128))
                changes.append(
                    ReferenceChange(name, "changed", float(np.nanmax(diff)) if diff.size else 0.0)
                )
            else:
                changes.append(ReferenceChange(name, "changed"))
    return changes
