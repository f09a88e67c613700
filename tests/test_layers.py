"""The package's layers only import downward, have no import cycle, and nothing in the library imports the CLI.

Every import statement counts, at module level or inside a function: a function-level import that climbs a
layer is the same dependency, only hidden. The graph is read from the source with ``ast``, nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "zephyr_tutorial"
ROOT = "zephyr_tutorial"

LAYERS: dict[str, tuple[int, int]] = {
    # 0: basics, shared by every stage
    "zephyr_tutorial": (0, 0),
    "zephyr_tutorial.profiles": (0, 0),
    "zephyr_tutorial.runtime": (0, 0),
    "zephyr_tutorial.stats": (0, 0),
    "zephyr_tutorial.data": (0, 0),
    "zephyr_tutorial.schemas": (0, 0),
    "zephyr_tutorial.chat_template": (0, 0),
    "zephyr_tutorial.models": (0, 0),
    "zephyr_tutorial.backends": (0, 0),
    "zephyr_tutorial.memory": (0, 0),
    "zephyr_tutorial.training": (0, 0),
    "zephyr_tutorial.runner": (0, 0),
    # 1: the recipe schema (no stage imports), and the plan that reads the recipes' budgets
    "zephyr_tutorial.recipes": (1, 0),
    "zephyr_tutorial.plan": (1, 1),
    # 2: the stages, each above the ones it may use
    "zephyr_tutorial.evaluation": (2, 0),
    "zephyr_tutorial.generation": (2, 1),
    "zephyr_tutorial.sft": (2, 2),
    "zephyr_tutorial.feedback": (2, 3),
    "zephyr_tutorial.dpo": (2, 4),
    # the parts each stage's data comes from (teacher, judge, pool): above every stage it builds for
    "zephyr_tutorial.roles": (2, 5),
    # 3: what runs the stages or shows their results; nothing below imports them
    "zephyr_tutorial.plots": (3, 0),
    "zephyr_tutorial.widgets": (3, 0),
    "zephyr_tutorial.notebook": (3, 0),
    "zephyr_tutorial.pipelines": (3, 0),
    "zephyr_tutorial.cli": (3, 1),
}
"""Rank of every top-level module or subpackage (its submodules share it). A module may import its own rank
or lower; a new module gets a line here, or the test below fails."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str, known: dict[str, Path]) -> bool:
    return known[name].name == "__init__.py"


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every package module ``name`` imports, anywhere in the file, with the packages the import initialises."""
    package = name if _is_package(name, known) else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:  # `from pkg import sub` imports the submodule pkg.sub
                candidate = f"{source}.{alias.name}"
                targets.add(candidate if candidate in known else source)
    resolved = set()
    own_ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    for target in targets:
        if not (target == ROOT or target.startswith(ROOT + ".")):
            continue
        while target not in known and "." in target:  # `import zephyr_tutorial.x.y as z`: a module attribute
            target = target.rpartition(".")[0]
        parts = target.split(".")
        for i in range(2, len(parts) + 1):  # importing a.b.c runs a.b's __init__ first
            ancestor = ".".join(parts[:i])
            if ancestor != name and ancestor not in own_ancestors:
                resolved.add(ancestor)
    return resolved


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def rank(name: str) -> tuple[int, int]:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "."):
            return LAYERS[prefix]
    raise KeyError(name)


def test_every_module_has_a_layer():
    unranked = [
        name
        for name in modules()
        if name != ROOT
        and not any(name == prefix or name.startswith(prefix + ".") for prefix in LAYERS if prefix != ROOT)
    ]
    assert not unranked, f"give these modules a rank in LAYERS: {unranked}"


def test_imports_go_only_to_the_same_or_a_lower_layer():
    upward = sorted(
        f"{name} {rank(name)} imports {target} {rank(target)}"
        for name, targets in graph().items()
        for target in targets
        if rank(target) > rank(name)
    )
    assert not upward, "\n".join(upward)


def test_no_library_module_imports_the_cli():
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in graph().items()
        if not (name == "zephyr_tutorial.cli" or name.startswith("zephyr_tutorial.cli."))
        for target in targets
        if target == "zephyr_tutorial.cli" or target.startswith("zephyr_tutorial.cli.")
    )
    assert not offenders, "\n".join(offenders)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_checks_see_function_level_imports_and_cycles(tmp_path):
    """The guard itself: a cycle hidden in a function is found, a clean graph passes."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    source = tmp_path / "zephyr_tutorial" / "profiles.py"
    source.parent.mkdir()
    source.write_text("def f():\n    from .dpo import losses\n    import zephyr_tutorial.cli.train\n")
    known = {
        "zephyr_tutorial.profiles": source,
        "zephyr_tutorial.dpo": source,
        "zephyr_tutorial.dpo.losses": source,
        "zephyr_tutorial.cli": source,
        "zephyr_tutorial.cli.train": source,
    }
    assert imports_of("zephyr_tutorial.profiles", source, known) == {
        "zephyr_tutorial.dpo",
        "zephyr_tutorial.dpo.losses",
        "zephyr_tutorial.cli",
        "zephyr_tutorial.cli.train",
    }
