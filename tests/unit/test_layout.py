"""The house layout, checked: providers stand alone, errors import nothing, no circles.

Read from the source's import statements (module level, outside TYPE_CHECKING), so a
new module that breaks a rule fails here with the import that breaks it."""

from __future__ import annotations

import ast
from pathlib import Path

import vpack

SRC = Path(vpack.__file__).parent
PROVIDERS = SRC / "providers"
SHARED = {"base", "errors", "registry", "kit"}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path) -> set[str]:
    """vpack modules imported when `path` is imported (not inside functions or
    TYPE_CHECKING blocks, which cannot make a circle at import time)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("vpack"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vpack"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    return {
        name: {m for m in _top_level_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def _provider_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "providers" and parts[2] not in SHARED:
        return parts[2]
    return None


def test_providers_do_not_import_each_other() -> None:
    crossings = []
    for path in PROVIDERS.rglob("*.py"):
        mine = _provider_of(_module(path))
        if mine is None:
            continue
        for imported in _top_level_imports(path) | _all_imports(path):
            theirs = _provider_of(imported)
            if theirs is not None and theirs != mine:
                crossings.append(f"{_module(path)} imports {imported}")
    assert not crossings


def _all_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vpack"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("vpack"))
    return names


def test_the_shared_layer_imports_no_provider() -> None:
    shared = [p for p in PROVIDERS.rglob("*.py") if _provider_of(_module(p)) is None]
    crossings = [
        f"{_module(p)} imports {m}" for p in shared for m in _all_imports(p) if _provider_of(m)
    ]
    assert not crossings, "providers are found through the registry, by name"


def test_the_errors_import_nothing() -> None:
    assert _all_imports(PROVIDERS / "errors.py") == set()


def test_no_module_imports_itself_in_a_circle() -> None:
    graph = _graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not circles, " ; ".join(" -> ".join(c) for c in circles)


def test_route_modules_do_not_import_each_other() -> None:
    """What two routes share lives in vpack.api.actions (or below), not in a handler."""
    routes = SRC / "api" / "routes"
    crossings = [
        f"{_module(p)} imports {m}"
        for p in routes.glob("*.py")
        for m in _all_imports(p)
        if m.startswith("vpack.api.routes") and m != _module(p)
    ]
    assert not crossings


def test_the_layout_check_sees_a_crossing() -> None:
    """The checks above read what they claim to read (a check that cannot fail proves nothing)."""
    s3 = _all_imports(PROVIDERS / "s3" / "provider.py")
    assert "vpack.providers.s3.listing" in s3 and _provider_of("vpack.providers.local.provider")
    assert "vpack.providers.errors" in _graph()["vpack.security.destinations"]
    assert "vpack.api.actions" in _all_imports(SRC / "api" / "routes" / "cloud.py")
