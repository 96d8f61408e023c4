"""The import arrows of the design: a stage never reaches back up.

physics <- render <- data; models and diffusion need torch only; train -> data, models,
diffusion, physics, render (never eval: quick evaluation is a callback from above); eval never
imports a model; nothing but the CLI imports cli, quickstart or experiments.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "phylaw"

ALLOWED = {
    "physics": {"physics"},
    "render": {"render", "physics"},
    "data": {"data", "physics", "render"},
    "models": {"models"},
    "diffusion": {"diffusion"},
    "eval": {"eval", "physics", "render", "data"},
    "train": {"train", "data", "models", "diffusion", "physics", "render"},
    "sample": {"sample", "train", "data", "models", "diffusion", "physics", "render"},
}
TOP_ONLY = {"cli", "commands", "quickstart", "experiments"}  # entry points, for the CLI


def _phylaw_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "phylaw" and len(parts) > 1:
                found.add(parts[1])
    return found


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        yield rel.parts[0].removesuffix(".py") if rel.parts[0] != "__init__.py" else "", path


@pytest.mark.parametrize("layer,path", list(_modules()), ids=lambda x: str(x))
def test_imports_follow_the_arrows(layer, path):
    imported = _phylaw_imports(path)
    if layer in TOP_ONLY or layer == "":
        entry = layer in ("cli", "commands")
        bad = {m for m in imported if m in TOP_ONLY and m != layer and not entry}
    else:
        bad = {m for m in imported if m not in ALLOWED.get(layer, set()) | {"__init__"}}
    assert not bad, f"{path.relative_to(SRC)} imports phylaw.{sorted(bad)} against the design"


def _roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("layer", ["physics", "render", "data"])
def test_physics_render_and_data_are_numpy_only(layer):
    """Only the torch Dataset adapter (data/dataset.py) may import torch below the model."""
    for path in (SRC / layer).rglob("*.py"):
        assert "torch" not in _roots(path) or path.name == "dataset.py", path
