"""The package's layout is its architecture: stages import only from earlier stages."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "wasmgen"
# In pipeline order; a module may import its own stage and the ones before it, never later ones.
STAGES = (
    ("_version", "envoy_headers", "errors", "fsutil", "proc"),
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
    ("__init__", "__main__"),
)
RANK = {name: rank for rank, names in enumerate(STAGES) for name in names}
# The embedded host runs any proxy-wasm module: it knows nothing of specs, plans or backends.
HOST_MAY_IMPORT = {"_version", "envoy_headers", "errors", "fsutil", "proc", "wasm", "host"}
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


def test_modules_stay_small() -> None:
    """No module grows past about 400 lines; split it by responsibility instead."""
    big = {
        str(path.relative_to(ROOT)): n
        for path, _ in _modules()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not big, big
