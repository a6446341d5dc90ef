"""The package's layout is its architecture: stages import only from earlier stages."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "wasmgen"
# In pipeline order; a module may import its own stage and the ones before it, never later ones.
STAGES = (
    ("_version", "envoy_headers", "errors", "fsutil", "proc", "records"),
    ("spec",),
    ("variants",),
    ("plan",),
    ("semantics",),
    ("backends",),
    ("deploy",),
    ("artifacts",),
    ("wasm",),
    ("build",),
    ("host",),
    ("envoy",),
    ("ship",),
    ("testing",),
    ("pipeline",),
    ("cli",),
    ("api", "__init__", "__main__"),
)
RANK = {name: rank for rank, names in enumerate(STAGES) for name in names}
# The embedded host runs any proxy-wasm module: it knows nothing of specs, plans or backends.
HOST_MAY_IMPORT = {
    "_version",
    "envoy_headers",
    "errors",
    "fsutil",
    "proc",
    "records",
    "wasm",
    "host",
}
MAX_MODULE_LINES = 420


def _stage(module: str) -> str:
    """wasmgen.spec.loader -> spec; wasmgen -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every wasmgen module a file imports (also inside functions and TYPE_CHECKING blocks)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("wasmgen")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wasmgen"):
            module = node.module or ""
            if module == "wasmgen":  # `from wasmgen import pipeline` names a submodule
                found += [(node.lineno, f"wasmgen.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, module))
    return found


def _modules() -> list[tuple[Path, str]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        out.append((path, _stage(".".join(rel.parts))))
    return out


def test_every_module_belongs_to_a_known_stage() -> None:
    """A new folder must be placed in the stage order on purpose."""
    unknown = {stage for _, stage in _modules()} - set(RANK)
    assert not unknown, f"add these to STAGES in tests/test_layout.py: {sorted(unknown)}"


def test_no_stage_imports_a_later_one() -> None:
    """spec -> plan -> semantics -> backends -> deploy -> ... -> cli, one way only."""
    violations = []
    for path, stage in _modules():
        for line, module in _imports(path):
            target = _stage(module)
            if RANK.get(target, -1) > RANK[stage]:
                violations.append(f"{path.relative_to(ROOT)}:{line}: {stage} imports {module}")
    assert not violations, "\n".join(violations)


def test_the_host_knows_nothing_of_specs_or_backends() -> None:
    """wasmgen.host runs any proxy-wasm module; it imports only the base and wasm stages."""
    violations = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path, stage in _modules()
        if stage == "host"
        for line, module in _imports(path)
        if _stage(module) not in HOST_MAY_IMPORT
    ]
    assert not violations, "\n".join(violations)


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The import scan finds lazy imports too, so the rules above can fail."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    from wasmgen.cli.app import app\n    from wasmgen import pipeline\n"
    )
    assert [m for _, m in _imports(probe)] == ["wasmgen.cli.app", "wasmgen.pipeline"]


def _module_name(path: Path, root: Path) -> str:
    """wasmgen/host/vm.py -> wasmgen.host.vm; wasmgen/host/__init__.py -> wasmgen.host."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_circles(paths: list[Path], root: Path = ROOT) -> list[list[str]]:
    """Every group of modules that import each other in a circle (Tarjan's strongly connected
    components over all imports, lazy and TYPE_CHECKING ones included: a circle in the types
    is a circle in the design). A package's __init__ counts as a module of its own."""
    names = {_module_name(p, root): p for p in paths}
    graph = {
        n: sorted({m for _, m in _imports(p) if m in names and m != n}) for n, p in names.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return circles


def test_no_import_circles_even_inside_a_stage() -> None:
    """Each stage's modules read top-down too: no module imports one that imports it back
    (import a sibling module, not the package, from inside a package)."""
    circles = import_circles([path for path, _ in _modules()])
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_the_circle_finder_sees_a_circle(tmp_path: Path) -> None:
    """A TYPE_CHECKING-only import back is a circle; a one-way pair is not."""
    pkg = tmp_path / "wasmgen" / "host"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("from wasmgen.host.b import B\n")
    (pkg / "b.py").write_text("if TYPE_CHECKING:\n    from wasmgen.host.a import A\n")
    (pkg / "c.py").write_text("from wasmgen.host.a import A\n")
    paths = sorted(pkg.glob("*.py"))
    assert import_circles(paths, tmp_path) == [["wasmgen.host.a", "wasmgen.host.b"]]
    (pkg / "b.py").write_text("X = 1\n")
    assert import_circles(paths, tmp_path) == []


def test_modules_stay_small() -> None:
    """No module grows past about 400 lines; split it by responsibility instead."""
    big = {
        str(path.relative_to(ROOT)): n
        for path, _ in _modules()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not big, big


# Absolute paths of a build machine (assembled, so this file does not match itself).
_MACHINE_PATH = re.compile(
    "(?:" + "|".join(["/" + "work/", "/" + "root/", "/" + "home/[a-z]", "/" + "Users/"]) + ")"
)


def test_no_tracked_file_names_a_build_machines_path() -> None:
    """Every file the repository tracks is readable on any machine: no absolute paths of the
    machine it was written on (cite a file in the repo, or a test, instead)."""
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    found = []
    for rel in filter(None, tracked):
        path = ROOT / rel
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        for n, line in enumerate(path.read_bytes().decode("utf-8", "replace").splitlines(), 1):
            if _MACHINE_PATH.search(line):
                found.append(f"{rel}:{n}: {line.strip()[:120]}")
    assert not found, "\n".join(found)
