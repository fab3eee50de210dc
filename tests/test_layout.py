"""The repository is laid out the way it installs: one package, rooms by job, imports pointing one way.

Every import of the package's modules is counted, also those inside functions: no circle, and no room imports a
room above it (docs/architecture.md draws the map)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "facetrack"
# Lowest first: a module may import its own room and the rooms before it.
ROOMS = ("video", "faces", "expressions", "analysis", "model", "hub", "data", "inference", "training", "evaluation",
         "quickstart", "commands", "__main__")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                for alias in node.names:
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def room(module: str) -> int:
    parts = module.split(".")
    return ROOMS.index(parts[1]) if len(parts) > 1 else -1


def test_the_package_is_its_folder():
    setuptools = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "package-dir" not in setuptools, "no folder is remapped into the package"
    assert setuptools["packages"]["find"]["include"] == ["facetrack*"]
    rooms = {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").is_file()}
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert rooms | modules <= set(ROOMS) | {"__init__"}, (rooms | modules) - set(ROOMS)


def test_no_import_circle():
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_imports_point_down_the_rooms():
    upward = [f"{module} -> {target}" for module, targets in import_graph().items() for target in targets
              if room(target) > room(module)]
    assert upward == []


def test_the_hub_model_files_import_only_their_siblings_and_the_face_pipeline():
    """facetrack/model/ is copied flat into Hub folders: relative imports of siblings, and (the processor) the
    installed package's rooms below it."""
    for path in (PACKAGE / "model").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and (PACKAGE / "model" / f"{node.module}.py").is_file(), path.name
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("facetrack"):
                assert room(node.module) < room("facetrack.model"), (path.name, node.module)
