"""Every chapter's switch to real data (``USE_REAL_DATA``, ``USE_IMAGENET_VIT``) runs end to end.

The book is built offline, so its real-data branches never run there. Here each chapter is run
with the switch turned on, against small files that the tests write in the layouts the loaders
read (Brain-Score's MajajHong2015 assembly with the HvM csv and zip of PNGs, the Cadena et al.
2019 pickle in its zip, a deep-retina HDF5 file), placed in the course's data cache with their
checksums registered, exactly as after a download. Pretrained torchvision weights cannot be
downloaded here; their loader is replaced by the untrained architecture, which exercises the same
code (layer names, input sizes, memory) with other numbers.

The chapters' code cells are executed in this process (the autouse fixture of conftest.py blocks
the network), so a branch that crashes, reads a column the real data lack, or assumes more images
than a dataset has fails here instead of in a reader's notebook. A switch in a chapter's first
cells changes everything after it, so that chapter runs whole; a switch in a chapter's last cell
runs with only the code it needs (`code_needed`), since the book build runs the rest already.
"""

from __future__ import annotations

import ast
import hashlib
import io
import pickle
import re
import zipfile
from pathlib import Path

import h5py
import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

import course_tools.datasets.real as real
import course_tools.models.registry as registry
from course_tools import data_home
from course_tools.datasets.real import RemoteFile

pytestmark = pytest.mark.slow
#: The chapters' runs are independent: each is an xdist group of its own (conftest.py).
XDIST_SPLIT_BY = "test"

BOOK = Path(__file__).resolve().parents[1] / "book"


# ------------------------------------------------------------------------ running a chapter
def chapter_code(name: str) -> list[str]:
    """The code cells of a MyST notebook chapter, in order."""
    text = (BOOK / f"{name}.md").read_text()
    # the cell body, without MyST option lines such as ":tags: [hide-input]"
    pattern = r"```\{code-cell\}[^\n]*\n(?::[^\n]*\n)*(.*?)```"
    return re.findall(pattern, text, flags=re.DOTALL)


def _binds(statement: ast.stmt) -> set[str]:
    """The global names a top-level statement binds (assigns, defines, imports, loops over)."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    bound, todo = set(), [statement]
    while todo:  # not the bodies of functions, classes and lambdas: their names are local
        node = todo.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        if not isinstance(node, scopes):
            todo.extend(ast.iter_child_nodes(node))
    return bound


def _reads(node: ast.AST) -> set[str]:
    """The global names the code reads: in a function's body those it does not bind itself
    (the globals it will use when called), in a comprehension those it does not loop over."""
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) else set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        arguments = node.args
        params = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        params += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
        body = node.body if isinstance(node.body, list) else [node.body]
        local = {a.arg for a in params}.union(*(_binds(b) for b in body if isinstance(b, ast.stmt)))
        outside = [*arguments.defaults, *filter(None, arguments.kw_defaults)]
        outside += getattr(node, "decorator_list", [])
        return set().union(*map(_reads, outside)) | (set().union(*map(_reads, body)) - local)
    reads = set().union(*map(_reads, ast.iter_child_nodes(node)))
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        reads -= {
            n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)
        }
    return reads


def code_needed(cells: list[str], last: int) -> str:
    """Cell ``last`` run on its own: it, preceded by the imports of the earlier cells and those of
    their top-level statements that bind a name it reads, transitively (a backward slice).

    A chapter's switch to real data at its end needs the chapter's imports, constants and helper
    functions, not its simulation: the book build runs that already, and the test does not run it
    a second time. A statement left out that was needed shows up as a NameError, never as a
    silent pass.
    """
    target = ast.parse(cells[last])
    wanted = _reads(target) - set().union(*map(_binds, target.body))
    statements = [(i, st) for i, code in enumerate(cells[:last]) for st in ast.parse(code).body]
    chosen: set[int] = set()
    while True:  # to a fixed point: a function body may read a name bound after it
        before = len(wanted)
        for k, (_, statement) in reversed(list(enumerate(statements))):
            imports = isinstance(statement, (ast.Import, ast.ImportFrom))
            if k not in chosen and (imports or _binds(statement) & wanted):
                chosen.add(k)
                wanted |= _reads(statement)
        if len(wanted) == before:
            break
    kept: list[list[int]] = [[] for _ in cells[:last]]  # line numbers kept, per earlier cell
    for k in sorted(chosen):
        i, statement = statements[k]
        decorators = getattr(statement, "decorator_list", [])
        first = min([statement.lineno] + [d.lineno for d in decorators])
        kept[i] += range(first, statement.end_lineno + 1)
    source_lines = [code.splitlines() for code in cells[:last]]
    parts = [
        "\n".join(source_lines[i][n - 1] for n in numbers)
        for i, numbers in enumerate(kept)
        if numbers
    ]
    return "\n".join([*parts, cells[last]])


def run_chapter(
    name: str,
    replace: dict[str, str],
    *,
    last_cell: str | None = None,
    only_what_it_needs: bool = False,
) -> dict:
    """Execute a chapter's code cells with each ``replace`` key (which must occur) replaced.

    With ``last_cell``, stop after the first cell that contains that text; with
    ``only_what_it_needs`` as well, run that cell with only the code it needs (`code_needed`).
    """
    from IPython.display import display

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = chapter_code(name)
    if last_cell is not None:
        ends = [i for i, cell in enumerate(cells) if last_cell in cell]
        assert ends, f"{name}: no code cell contains {last_cell!r}"
        cells = cells[: ends[0] + 1]
    source = code_needed(cells, len(cells) - 1) if only_what_it_needs else "\n".join(cells)
    for old, new in replace.items():
        assert old in source, f"{name}: expected {old!r} in the chapter's code"
        source = source.replace(old, new)
    namespace = {"__name__": f"chapter_{name}", "display": display}
    try:
        exec(compile(source, f"book/{name}.md", "exec"), namespace)
    finally:
        plt.close("all")
    return namespace


SWITCH = {"USE_REAL_DATA = False": "USE_REAL_DATA = True"}


@pytest.fixture
def untrained_downloads(monkeypatch):
    """Torchvision networks load with random weights instead of downloading them."""
    load_model = registry.load_model
    asked = []

    def offline_load_model(name, *, pretrained=True, **kwargs):
        if name in registry.TORCHVISION_MODELS and pretrained:
            asked.append(name)
            return load_model(name, pretrained=False, **kwargs)
        return load_model(name, pretrained=pretrained, **kwargs)

    monkeypatch.setattr(registry, "load_model", offline_load_model)
    return asked


def register(monkeypatch, table: dict, key: str, path: Path) -> None:
    """Record ``path``'s sha1 as the known hash of ``table[key]``, as if it were downloaded."""
    remote = table[key]
    digest = hashlib.sha1(path.read_bytes()).hexdigest()
    monkeypatch.setitem(table, key, RemoteFile(remote.name, remote.url, f"sha1:{digest}"))


# ------------------------------------------------------------------ MajajHong2015 (HvM)
CATEGORIES = ["Animals", "Boats", "Cars", "Chairs", "Faces", "Fruits", "Planes", "Tables"]


def write_majajhong2015(
    folder: Path, monkeypatch, *, objects_per_category=2, images_per_object=10, seed=0
) -> pd.DataFrame:
    """Brain-Score's three MajajHong2015 files with responses that depend on the images.

    Variation-3 images (plus a few variation-0 ones the chapters must leave out) of 8 categories;
    V4 and IT multi-units respond to a random projection of the image, shown 4 times in a shuffled
    order, with one image shown only twice; two time bins, of which 70-170 ms is the one used.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for category in CATEGORIES:
        for o in range(objects_per_category):
            for i in range(images_per_object + 1):
                rows.append((category, f"{category.lower()}{o}", 0 if i == 0 else 3))
    n = len(rows)
    pixels = 48
    images = np.zeros((n, pixels, pixels), dtype=np.uint8)
    ty, tz, s = rng.uniform(-0.6, 0.6, n), rng.uniform(-0.6, 0.6, n), rng.uniform(0.7, 1.3, n)
    yy, xx = np.mgrid[:pixels, :pixels] / (pixels - 1) * 2 - 1
    for k, (category, _, _) in enumerate(rows):
        blob = np.exp(-((xx - ty[k]) ** 2 + (-yy - tz[k]) ** 2) / (0.05 + 0.1 * s[k]) ** 2)
        stripes = np.cos(8 * (CATEGORIES.index(category) + 1) * xx) * blob
        images[k] = np.clip(128 + 100 * stripes + rng.normal(0, 10, xx.shape), 0, 255)
    ids = [f"{k:040x}" for k in rng.integers(0, 2**62, size=n)]
    csv = pd.DataFrame(
        {
            "image_id": ids,
            "object_name": [r[1] for r in rows],
            "category_name": [r[0] for r in rows],
            "variation": [r[2] for r in rows],
            "ty": ty,
            "tz": tz,
            "s": s,
            **{axes: rng.normal(size=n) for axes in ["rxy", "rxz", "ryz"]},
            **{f"{axes}_semantic": rng.normal(size=n) for axes in ["rxy", "rxz", "ryz"]},
            "size": pixels,  # in HvM, the size of the image in pixels
            "background_id": [f"bg{k}" for k in range(n)],
            "filename": [f"{r[1]}_{i}.png" for r, i in zip(rows, ids, strict=True)],
            "id": np.arange(1, n + 1),
        }
    )
    csv.to_csv(folder / "image_dicarlo_hvm-public.csv", index=False)
    with zipfile.ZipFile(folder / "image_dicarlo_hvm-public.zip", "w") as archive:
        for name, image in zip(csv["filename"], images, strict=True):
            png = io.BytesIO()
            Image.fromarray(image, mode="L").save(png, format="PNG")
            archive.writestr(name, png.getvalue())

    regions = ["V4"] * 12 + ["IT"] * 16
    weights = 3 * rng.normal(size=(pixels * pixels, len(regions))) / pixels
    drive = (images.reshape(n, -1) / 255.0 - 0.5) @ weights
    shown = np.full(n, 4)
    shown[3] = 2
    presentations = rng.permutation([(k, r) for k in range(n) for r in range(shown[k])])
    values = (
        np.stack(
            [
                np.maximum(
                    drive[presentations[:, 0]]
                    + rng.normal(0, 0.3, (len(presentations), len(regions))),
                    0,
                ),
                rng.normal(size=(len(presentations), len(regions))),
            ],
            axis=-1,
        )
        .transpose(1, 0, 2)
        .astype(np.float32)
    )
    coords = {
        "image_id": ("presentation", [ids[k] for k in presentations[:, 0]]),
        "repetition": ("presentation", presentations[:, 1]),
        "object_name": ("presentation", [rows[k][1] for k in presentations[:, 0]]),
        "variation": ("presentation", [rows[k][2] for k in presentations[:, 0]]),
        "neuroid_id": ("neuroid", [f"site_{j}" for j in range(len(regions))]),
        "region": ("neuroid", regions),
        "animal": ("neuroid", ["Chabo"] * 14 + ["Tito"] * 14),
        "arr": ("neuroid", ["A"] * len(regions)),
        "col": ("neuroid", np.arange(len(regions)) % 10),
        "row": ("neuroid", np.arange(len(regions)) // 10),
        "hemisphere": ("neuroid", ["L"] * len(regions)),
        "subregion": ("neuroid", regions),
        "x": ("neuroid", rng.normal(size=len(regions))),
        "y": ("neuroid", rng.normal(size=len(regions))),
        "time_bin_start": ("time_bin", [70, 170]),
        "time_bin_end": ("time_bin", [170, 270]),
    }
    xr.DataArray(
        values,
        dims=("neuroid", "presentation", "time_bin"),
        coords=coords,
        name="dicarlo.MajajHong2015.public",
    ).to_netcdf(folder / "assy_dicarlo_MajajHong2015_public.nc", engine="h5netcdf")
    for key, remote in real.MAJAJHONG2015_FILES.items():
        register(monkeypatch, real.MAJAJHONG2015_FILES, key, folder / remote.name)
    return csv


@pytest.fixture
def majajhong2015(monkeypatch):
    return write_majajhong2015(data_home() / "majajhong2015", monkeypatch)


def test_layers_to_areas_runs_on_majajhong2015(majajhong2015):
    ns = run_chapter("layers_to_areas", SWITCH)
    n_images = int((majajhong2015["variation"] == 3).sum())
    assert ns["data"].n_stimuli == n_images  # fewer than 960: all of them, none invented
    assert ns["area_names"] == ["V4", "IT"]
    assert set(ns["scores"]["area"]) == {"V4", "IT"}
    assert np.isfinite(ns["scores"]["score"]).all()
    assert set(ns["summary"].index) == {"V4", "IT"}


def test_beyond_categorization_runs_on_majajhong2015(majajhong2015):
    ns = run_chapter("beyond_categorization", SWITCH)
    assert ns["area_names"] == ["V4", "IT"]
    assert len(ns["area_targets"]) == int((majajhong2015["variation"] == 3).sum())
    stream = ns["stream"]
    assert set(stream["layer"].astype(str)) == {"V4", "IT"}
    assert np.isfinite(stream["score"]).all()
    # the table of sites needed has a row per task and a column per (area, fit)
    assert {area for area, _ in ns["table"].columns if area} == {"V4", "IT"}


# ----------------------------------------------------------------------- Cadena et al. 2019
def write_cadena2019(folder: Path, monkeypatch, *, n_images=60, n_neurons=6, seed=0) -> dict:
    """The authors' zip holding the pickle: 140 x 140 images, responses with missing trials."""
    rng = np.random.default_rng(seed)
    images = rng.normal(128, 40, size=(n_images, 140, 140)).clip(0, 255)
    crop = images[:, 30:-30:2, 30:-30:2] / 255 - 0.5
    filters = rng.normal(size=(40 * 40, n_neurons)) / 40
    rates = np.exp(np.clip(crop.reshape(n_images, -1) @ filters, -3, 3))
    responses = rng.poisson(2 * rates, size=(4, n_images, n_neurons)).astype(float)
    responses[2:, :, 0] = np.nan  # a session with 2 repeats
    responses[:, :5, 1] = np.nan  # images a session did not show
    data = {
        "images": images,
        "responses": responses,
        "repetitions": np.array([2] + [4] * (n_neurons - 1)),
        "image_types": np.array(
            [["original", "conv1", "conv2", "conv3", "conv4"][k % 5] for k in range(n_images)]
        )[:, None],
        "image_ids": np.arange(n_images)[:, None],
        "image_numbers": np.arange(n_images) // 5,
        "subject_id": np.arange(n_neurons) % 2,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / real.CADENA2019_ZIP.name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(real.CADENA2019_MEMBER, pickle.dumps(data))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(
        real, "CADENA2019_ZIP", RemoteFile(path.name, real.CADENA2019_ZIP.url, f"sha256:{digest}")
    )
    return data


def test_v1_chapter_runs_on_cadena2019_with_vgg16(monkeypatch, untrained_downloads):
    data = write_cadena2019(data_home() / "cadena2019", monkeypatch)
    with pytest.warns(real.DataLicenseNotice):
        ns = run_chapter("v1_system_identification", SWITCH)
    assert untrained_downloads == ["vgg16"]
    assert ns["dataset"].n_neurons == data["responses"].shape[2]
    assert ns["images"].shape[1:] == (40, 40)  # the paper's crop
    assert set(ns["layer_scores"]) == {
        "conv1_2",
        "conv2_2",
        "conv3_1",
        "conv3_3",
        "conv4_3",
        "conv5_3",
    }
    assert not ns["SIMULATED"]


# ----------------------------------------------------------- ImageNet ViT-B/16 (architectures)
def test_architectures_chapter_measures_an_imagenet_vit(untrained_downloads):
    switch = {"USE_IMAGENET_VIT = False": "USE_IMAGENET_VIT = True"}
    ns = run_chapter(
        "architectures", switch, last_cell="if USE_IMAGENET_VIT:", only_what_it_needs=True
    )
    assert untrained_downloads == ["vit_b_16"]
    heads = ns["imagenet_heads"]
    assert sorted(heads["block"].unique()) == list(range(12))  # ViT-B: 12 blocks of 12 heads
    assert len(heads) == 12 * 12
    # a distance between 16 px patches of a 224 px image: within the image's diagonal
    assert heads["distance"].between(0, 224 * 2**0.5).all()


# ------------------------------------------------------------------------- deep-retina HDF5
PLACEHOLDER_FILE = 'DEEP_RETINA_FILE = "~/data/deep-retina/naturalscene.h5"'


def test_retina_chapter_runs_on_a_deep_retina_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "naturalscene.h5"
    # 50 x 50 frames as deep-retina stores them; 6 s of training movie keeps the chapter's
    # 10 epochs of the CNN short (the test checks the branch runs, not how well it fits)
    n_cells, side, n_train, n_test = 3, 50, 600, 200
    with h5py.File(path, "w") as f:
        f["train/stimulus"] = rng.normal(size=(n_train, side, side)).astype(np.float32)
        f["train/response/firing_rate_10ms"] = rng.gamma(2.0, 1.0, size=(n_cells, n_train))
        f["test/stimulus"] = rng.normal(size=(n_test, side, side)).astype(np.float32)
        f["test/response/firing_rate_10ms"] = rng.gamma(2.0, 1.0, size=(n_cells, n_test))
        for cell in range(n_cells):
            f[f"test/repeats/cell{cell + 1:02d}"] = rng.poisson(1.0, size=(5, n_test)).astype(float)
    ns = run_chapter(
        "retina",
        {
            **SWITCH,
            PLACEHOLDER_FILE: f"DEEP_RETINA_FILE = {str(path)!r}",
        },
        last_cell=PLACEHOLDER_FILE,
        only_what_it_needs=True,
    )
    assert len(ns["real_fit"]["predictions"]) == 2  # the LN model and the CNN
    for prediction in ns["real_fit"]["predictions"].values():
        assert prediction.shape == ns["real_trials"].shape[1:]
        assert np.isfinite(prediction).all()


# ------------------------------------------------------------------------------ slicing
def test_code_needed_keeps_imports_and_what_the_last_cell_reads():
    cells = [
        "import numpy as np\nA = 1\nB = np.ones(3)  # used\nunused = expensive()",
        "fig = 'a figure the last cell makes again'\nseed_everything(0)",
        "@decorate\ndef f(x, a=A):\n    return x + C\n\n\nC = B + 1\ndrawn = f(B)",
        "fig, ax = 1, 2\nprint(f(B), ax)",
    ]
    # f reads A (a default) and C (in its body); C reads B; B reads np. fig is the last cell's
    # own; `unused`, `drawn`, the bare call and the decorator's name (never bound) are left out.
    assert code_needed(cells, 3) == (
        "import numpy as np\nA = 1\nB = np.ones(3)  # used\n"
        "@decorate\ndef f(x, a=A):\n    return x + C\nC = B + 1\n"
        "fig, ax = 1, 2\nprint(f(B), ax)"
    )
    assert code_needed(cells, 1) == "import numpy as np\n" + cells[1]


# ------------------------------------------------------------------------------ coverage
COVERED = {
    ("layers_to_areas", "USE_REAL_DATA"),
    ("beyond_categorization", "USE_REAL_DATA"),
    ("v1_system_identification", "USE_REAL_DATA"),
    ("architectures", "USE_IMAGENET_VIT"),
    ("retina", "USE_REAL_DATA"),
}


def test_every_switch_of_every_chapter_is_run_above():
    switches = {
        (path.stem, switch)
        for path in sorted(BOOK.glob("*.md"))
        for switch in re.findall(
            r"^(USE_\w+) = False", "\n".join(chapter_code(path.stem)), flags=re.MULTILINE
        )
    }
    assert switches == COVERED, "a chapter gained or lost a switch: run its branch in a test here"
