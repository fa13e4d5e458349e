"""Every number a chapter states is computed (glued), loaded, or quoted with its source.

A static check of the chapters' prose (no execution, well under a second). The rule:

1. The prose of a chapter is what a reader reads as text: everything outside the YAML front
   matter, fenced blocks (``{code-cell}``, ``{math}``, plain code), display math (``$$ ... $$``),
   inline code, MyST roles (``{glue:text}`...```, ``{cite:p}`...```, ``{doc}`...```, ...), link
   targets and HTML comments.
2. In that prose a *result-like number* is a decimal number (``0.78``, ``.5``), a percentage
   (``39 %``, ``12.5%``, ``per cent``) or a power of ten (``10^{-13}``, ``1e10``, also inside
   inline math, where ``$10^{-13}$`` would otherwise hide a result). Integers are not checked:
   in these chapters they are design choices (40 x 40 pixels, 8 channels, 6 blocks), and the
   results among them are glued by convention.
3. A block (a paragraph, one list item, one table, or one ``:::`` admonition as a whole) may
   state result-like numbers only if it **quotes** them: it carries a ``{cite...}`` role naming
   the source. Computed numbers are written with ``{glue:text}`` instead, which rule 1 removes.
4. A short allowlist, below, names the few phrases that are neither results nor quotations
   (a confidence level, a data split, a simulation parameter), each with its reason.

The guides for students and instructors are instructions, not chapters, and are not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
NOT_CHAPTERS = {"instructor_guide.md", "student_guide.md"}
CHAPTERS = sorted(p for p in BOOK.glob("*.md") if p.name not in NOT_CHAPTERS)

# (chapter, phrase as a regular expression, why it is neither a result nor a quotation)
ALLOWED = [
    ("*", r"95 % (bootstrap )?(interval|CI)", "the confidence level of an interval"),
    ("*", r"\b90 % training and 10 % test", "the data split of the Brain-Score recipe"),
    ("retina.md", r"10 % of the training bins", "the early-stopping split, a setting"),
    ("architectures.md", r"learning rate 0\.05, momentum 0\.9", "the optimiser's settings"),
    ("retina.md", r"SD 0\.1 during training", "a setting of the McIntosh architecture"),
    ("retina.md", r"every 0\.3-1 s", "a parameter of the simulated eye movements"),
    (
        "v1_system_identification.md",
        r"(25|50) % \*\*(simple|complex|non-classical)|12\.5 % each",
        "the simulated population's make-up, a parameter",
    ),
    ("v1_system_identification.md", r"0\.2-1 spikes|SD 0\.4-0\.9", "simulation parameters"),
    ("beyond_categorization.md", r"2\.5-4 px SD", "a parameter of the surrogate's V1 cells"),
    ("beyond_categorization.md", r"beyond \$10\^\{10\}\$", "the sites table's reporting cap"),
]

_FENCE = re.compile(r"^(```+|~~~+)")
_ROLE = re.compile(r"\{[a-zA-Z:_-]+\}`[^`]*`")
_INLINE_CODE = re.compile(r"`[^`]*`")
_INLINE_MATH = re.compile(r"(?<![\\$])\$([^$\n]+)\$")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_NUMBER = re.compile(
    r"(?<![\w.])(\d*\.\d+)(?![\w.])"  # decimals
    r"|\d+(?:\.\d+)?\s*(?:%|per ?cent)"  # percentages
    r"|\b10\s*\^\s*\{?\s*[-−]?\d+|\b\d+(?:\.\d+)?e[-+]?\d+\b"  # powers of ten
)
_MATH_NUMBER = re.compile(r"(?<![\w.])\d*\.\d+|10\s*\^\s*\{?\s*[-−]?\d+")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+")
_TARGET = re.compile(r"^\([\w-]+\)=$")  # a MyST label, (name)=


def prose_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of every prose block, with code and display math removed."""
    lines = text.splitlines()
    start = 0
    if lines and lines[0].strip() == "---":  # YAML front matter
        start = next(i for i in range(1, len(lines)) if lines[i].strip() == "---") + 1
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    first = 0
    fence = None
    in_math = False
    colon_depth = 0

    def close():
        nonlocal current
        if current:
            blocks.append((first, current))
        current = []

    for number, line in enumerate(lines[start:], start=start + 1):
        stripped = line.strip()
        if fence is not None:  # inside a fenced code or math block: skip
            if stripped.startswith(fence):
                fence = None
            continue
        match = _FENCE.match(stripped)
        if match:
            close()
            fence = match.group(1)
            continue
        if in_math:
            if stripped.endswith("$$"):
                in_math = False
            continue
        if stripped.startswith("$$"):
            close()
            in_math = not (stripped.endswith("$$") and len(stripped) > 2)
            continue
        if stripped.startswith(":::"):  # an admonition is one block, from ::: to :::
            if stripped == ":::" or stripped == "::::":
                colon_depth = max(0, colon_depth - 1)
                if colon_depth == 0:
                    close()
            else:
                close()
                colon_depth += 1
                first = number
                current.append(stripped)
            continue
        if colon_depth:
            current.append(line)
            continue
        if not stripped:
            close()
            continue
        if _LIST_ITEM.match(line) or stripped.startswith("#") or _TARGET.match(stripped):
            close()
        if not current:
            first = number
        current.append(line)
    close()
    return [(first, "\n".join(block)) for first, block in blocks]


def result_numbers(block: str) -> list[str]:
    """The result-like numbers a block states in its prose (rule 2)."""
    block = _COMMENT.sub(" ", block)
    block = _ROLE.sub(" ", block)
    block = _INLINE_CODE.sub(" ", block)
    block = _LINK_TARGET.sub("]", block)
    found = [m.group(0) for m in _MATH_NUMBER.finditer(" ".join(_INLINE_MATH.findall(block)))]
    text = _INLINE_MATH.sub(" ", block)
    return found + [m.group(0) for m in _NUMBER.finditer(text)]


def unsourced_numbers(path: Path) -> list[str]:
    problems = []
    for line, block in prose_blocks(path.read_text(encoding="utf-8")):
        if "{cite" in block:  # quoted with its source (rule 3)
            continue
        block = " ".join(block.split())
        for pattern in [p for chapter, p, _ in ALLOWED if chapter in ("*", path.name)]:
            block = re.sub(pattern, " ", block)
        numbers = result_numbers(block)
        if numbers:
            snippet = " ".join(block.split())[:110]
            problems.append(f"{path.name}:{line}: {', '.join(numbers)} in '{snippet}...'")
    return problems


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_prose_states_no_number_that_is_neither_glued_nor_quoted(chapter):
    problems = unsourced_numbers(chapter)
    assert not problems, (
        "These chapter paragraphs state numbers that are neither computed nor quoted. Compute "
        "each in a code cell and write it with {glue:text}`name:.2f` (myst_nb.glue), or, for a "
        "published number, cite its source in the same paragraph ({cite:p}`Key`); see this "
        "module's docstring for the rule:\n" + "\n".join(problems)
    )


def test_the_rule_catches_typed_results_and_spares_glued_and_quoted_ones():
    typed = "The CNN's median $r$ rose from 0.78 to 0.82, and LN explains 17 % of it.\n"
    assert result_numbers(typed) == ["0.78", "0.82", "17 %"]
    glued = "The CNN's median $r$ rose to {glue:text}`r_cnn:.2f` ($10^{-13}$ at most).\n"
    assert result_numbers(glued) == ["10^{-13"]
    quoted = "The slide quotes 50 % {cite:p}`Cadena2017`.\n\n```{code-cell}\nx = 0.5\n```\n"
    blocks = prose_blocks(quoted)
    assert [b for _, b in blocks] == ["The slide quotes 50 % {cite:p}`Cadena2017`."]
    table = ":::{admonition} Quoted\nA | 0.5 |\n{cite:p}`X`\n:::\nThen 0.25 here.\n"
    assert [result_numbers(b) for _, b in prose_blocks(table)] == [["0.5"], ["0.25"]]
    assert result_numbers("about 2 cores, 640 images, layer 6, 1/f spectrum") == []
