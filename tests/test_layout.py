"""The import arrows of the design (``shared/design.md``), enforced with no allowances.

physics <- render <- data; render reads the state model (``physics.state``) only, never a
simulator; models and diffusion import torch only (no other phylaw package); train -> data,
models, diffusion, physics.state, render (quick evaluation comes in as a callback: train never
imports eval); sample -> train (and what train may use); baselines -> data, render, physics,
eval.parse; eval -> physics.state, render (geometry, palette, raster), data (store, io): it
scores videos and never sees a model or a simulator; experiments and commands may use
everything; nothing imports commands, cli or experiments (but the CLI its commands, and the
commands the experiments); testing is imported only by tests and benchmarks. The root package
(``phylaw``: ``PhylawError``, the version) is open to all.

Each rule names the modules (``package`` or ``package.module``) a layer may import; a module is
allowed when it is one of them or inside one of them.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "phylaw"

TRAIN = ("train", "data", "models", "diffusion", "physics.state", "render")
ALLOWED: dict[str, tuple[str, ...]] = {
    "physics": ("physics",),
    "render": ("render", "physics.state"),
    "data": ("data", "physics", "render"),
    "models": ("models",),
    "diffusion": ("diffusion",),
    "train": TRAIN,
    "sample": ("sample", *TRAIN),
    "baselines": ("baselines", "data", "render", "physics", "eval.parse"),
    "eval": (
        "eval",
        "physics.state",
        "render.geometry",
        "render.palette",
        "render.raster",
        "data.store",
        "data.io",
    ),
    "testing": ("testing", "physics", "render", "data", "eval"),
    "experiments": ("*",),
    "commands": ("*",),
    "cli": ("*",),
}
IMPORTED_ONLY_BY = {  # module -> the layers that may import it
    "cli": (),
    "commands": ("cli", "commands"),
    "experiments": ("commands", "experiments"),
    "testing": ("testing",),
}


def _phylaw_imports(path: Path) -> set[str]:
    """Dotted phylaw module names (without 'phylaw.') that ``path`` imports, '' for the root."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module + "." + a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "phylaw":
                found.add(".".join(parts[1:]))
    return found


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if rel.parts[0] != "__init__.py" else ""


def _within(name: str, prefix: str) -> bool:
    return prefix == "*" or name == prefix or name.startswith(prefix + ".")


def _allowed(layer: str, name: str) -> bool:
    if name.split(".")[0] in ("", "PhylawError", "__version__"):
        return True  # the root package
    top = name.split(".")[0]
    if top in IMPORTED_ONLY_BY and layer != top and layer not in IMPORTED_ONLY_BY[top]:
        return False
    return any(_within(name, p) for p in ALLOWED.get(layer, ()))


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_arrows(path):
    layer = _layer(path)
    if layer == "":
        return  # the root package: PhylawError and the version
    assert layer in ALLOWED, f"{layer} is not a layer of the design; add it to design.md first"
    bad = sorted(m for m in _phylaw_imports(path) if not _allowed(layer, m))
    assert not bad, f"{path.relative_to(SRC)} imports phylaw.{bad} against the design"


@pytest.mark.parametrize("layer", ["physics", "render", "data", "eval"])
def test_below_the_model_only_numpy(layer):
    """Only the torch Dataset adapter (data/dataset.py) and the fidelity networks
    (eval/metrics) may import torch below the model."""
    for path in (SRC / layer).rglob("*.py"):
        roots = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots.add(node.module.split(".")[0])
        torch_ok = path.name == "dataset.py" or "metrics" in path.parts
        assert "torch" not in roots or torch_ok, path


def test_the_rules_can_fail():
    """The checker rejects what the design forbids (a test that cannot fail proves nothing)."""
    assert not _allowed("render", "physics.scenes.kinds")
    assert not _allowed("eval", "physics.scenarios")
    assert not _allowed("eval", "data.combinatorial")
    assert not _allowed("train", "eval.run")
    assert not _allowed("data", "experiments.runner")
    assert not _allowed("eval", "testing.defects")
    assert _allowed("eval", "render.raster") and _allowed("baselines", "eval.parse")
    assert _allowed("commands", "experiments.runner") and not _allowed("eval", "commands")
