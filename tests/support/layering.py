"""Import graphs read from source with ``ast``, for the layering tests of both packages.

Nothing is imported. Every import of one of the package's own modules counts,
wherever it is, including the ones under ``if TYPE_CHECKING:`` (an annotation
that names a higher module still ties the lower one to it) and the ones inside
functions (a late import hides a loop, it does not remove it).

Modules are named by their dotted path inside the package (``camera.manager``);
a package's ``__init__.py`` is named after the package (``camera``), the
package's own ``__init__.py`` is ``__init__``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path


def module_names(directory: Path, *, recursive: bool = False) -> dict[str, Path]:
    """Every module of ``directory`` by its dotted name inside the package."""
    paths = sorted(directory.rglob("*.py") if recursive else directory.glob("*.py"))
    names: dict[str, Path] = {}
    for path in paths:
        parts = path.relative_to(directory).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _own(name: str, modules: Iterable[str]) -> str | None:
    """The longest known module that ``name`` is, or lies in (``a.b.c`` → ``a.b``)."""
    known = set(modules)
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def _from_import(
    node: ast.ImportFrom, here: list[str], package: str, modules: set[str]
) -> set[str] | None:
    """The package's modules a ``from ... import ...`` names; None when outside the package."""
    name = node.module or ""
    if node.level == 0 and (name == package or name.startswith(f"{package}.")):
        base = name.removeprefix(package).lstrip(".")
    elif node.level == 0 or node.level - 1 > len(here):
        return None  # another package, or above ours
    else:
        prefix = here[: len(here) - (node.level - 1)]
        base = ".".join([*prefix, *([name] if name else [])])
    # ``from pkg import sub`` names a module; ``from pkg.mod import thing`` does not.
    submodules = {f"{base}.{a.name}" if base else a.name for a in node.names}
    named = submodules & modules
    if named:
        return named
    found = _own(base or "__init__", modules)
    return set() if found is None else {found}


def imports_of(
    path: Path, module: str, package: str, modules: set[str]
) -> tuple[set[str], set[str]]:
    """The package's modules and the top-level packages that ``module`` (at ``path``) imports.

    Args:
        path: The module's file.
        module: Its dotted name inside the package (see :func:`module_names`).
        package: The package's dotted name (``doorstep_bridge``).
        modules: Every module of the package.
    """
    # What a relative import is relative to: the module's package, inside ours.
    if module == "__init__":
        here: list[str] = []
    elif path.name == "__init__.py":
        here = module.split(".")
    else:
        here = module.split(".")[:-1]
    own: set[str] = set()
    packages: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                packages.add(alias.name.partition(".")[0])
                if alias.name.startswith(f"{package}."):
                    found = _own(alias.name.removeprefix(f"{package}."), modules)
                    own.update({found} if found else set())
        elif isinstance(node, ast.ImportFrom):
            named = _from_import(node, here, package, modules)
            if named is None:
                if node.level == 0:
                    packages.add((node.module or "").partition(".")[0])
                continue
            own.update(named)
    own.discard(module)
    return own & modules, packages


def import_graph(
    directory: Path, package: str, *, recursive: bool = False
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """For each module of ``directory``: the package's modules and the packages it imports."""
    names = module_names(directory, recursive=recursive)
    modules = set(names)
    graph: dict[str, set[str]] = {}
    packages: dict[str, set[str]] = {}
    for module, path in names.items():
        graph[module], packages[module] = imports_of(path, module, package, modules)
    return graph, packages


def find_loop(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop (``a -> b -> a``), if there is any."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for target in sorted(graph.get(module, ())):
            loop = visit(target, [*path, module])
            if loop:
                return loop
        done.add(module)
        return None

    for module in sorted(graph):
        loop = visit(module, [])
        if loop:
            return loop
    return None


def upward_imports(graph: dict[str, set[str]], layer_of: dict[str, int]) -> list[str]:
    """Imports from a lower layer to a higher one, as ``a (1) -> b (2)``."""
    return [
        f"{module} ({layer_of[module]}) -> {target} ({layer_of[target]})"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer_of[target] > layer_of[module]
    ]


def layer_index(layers: tuple[frozenset[str], ...]) -> dict[str, int]:
    """Each module's layer number."""
    return {module: layer for layer, modules in enumerate(layers) for module in modules}
