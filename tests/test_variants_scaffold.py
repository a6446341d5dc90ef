"""`wasmgen new-variant`: the scaffold installs with pip into a fresh venv, shows up in
`wasmgen variants`, and generates, builds, tests, packages and pushes its example."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli
from tests.registry_fixture import LocalRegistry
from wasmgen.variants.scaffold import scaffold


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def _fresh_venv(where: Path) -> Path:
    """A new venv that borrows this environment's installed dependencies (through a .pth
    file, to stay fast and offline for them) but installs wasmgen and the variant itself."""
    assert _run(sys.executable, "-m", "venv", where).returncode == 0
    python = where / "bin" / "python"
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    borrowed = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    (Path(purelib.stdout.strip()) / "_wasmgen_test_deps.pth").write_text(
        "\n".join(dict.fromkeys(borrowed)) + "\n"
    )
    installed = _run(python, "-m", "pip", "install", "-q", "--no-deps", "-e", ROOT)
    assert installed.returncode == 0, installed.stderr
    return where / "bin"


def test_scaffold_files_are_valid_python_and_yaml() -> None:
    """Every scaffolded file parses; the entry point names the variant's class."""
    import tomllib

    import yaml

    files = scaffold("stamp")
    assert set(files) == {
        "pyproject.toml",
        "README.md",
        "src/wasmgen_stamp/__init__.py",
        "src/wasmgen_stamp/templates/common/README.md.jinja",
        "src/wasmgen_stamp/examples/stamp.yaml",
        "tests/test_stamp.py",
    }
    project = tomllib.loads(files["pyproject.toml"])
    assert project["project"]["entry-points"]["wasmgen.variants"] == {
        "stamp": "wasmgen_stamp:Stamp"
    }
    for name, text in files.items():
        if name.endswith(".py"):
            compile(text, name, "exec")
        if name.endswith(".yaml"):
            assert yaml.safe_load(text)["variant"] == "stamp"
    with pytest.raises(ValueError, match="not a variant name"):
        scaffold("Bad Name")


def test_new_variant_refuses_a_used_directory(tmp_path: Path) -> None:
    """An existing non-empty directory is not overwritten; a bad name is a user error."""
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("keep")
    result = run_cli("new-variant", "stamp", "-o", tmp_path / "taken")
    assert result.code == 2 and "already exists" in result.stderr
    bad = run_cli("new-variant", "Not Valid", "-o", tmp_path / "x")
    assert bad.code == 2 and "not a variant name" in bad.stderr


@pytest.mark.slow
def test_new_variant_installs_and_runs_the_whole_pipeline(
    tmp_path: Path, oci_registry: LocalRegistry
) -> None:
    """pip install DIR makes the variant appear; generate, build, test, package and push its
    example; the scaffold's own tests pass."""
    from wasmgen.backends.templating import environment

    if len(getattr(environment(ROOT).loader, "searchpath", [])) < 2:
        pytest.skip(
            "needs the renderer's fallback to the built-in templates: in "
            "wasmgen/backends/templating.py environment(), FileSystemLoader([str(variant_dir), "
            'str(generators_root() / "headers")])'
        )
    package = tmp_path / "wasmgen-stamp"
    assert run_cli("new-variant", "stamp", "-o", package).code == 0
    bin_dir = _fresh_venv(tmp_path / "venv")
    installed = _run(bin_dir / "python", "-m", "pip", "install", "-q", package)
    assert installed.returncode == 0, installed.stderr
    wasmgen = bin_dir / "wasmgen"

    listed = _run(wasmgen, "variants")
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in listed.stdout.splitlines() if r.startswith("stamp "))
    assert row.split()[1:3] == ["0.1.0", "wasmgen-stamp"]
    assert run_cli("variants").stdout.count("stamp ") == 0, "installed only in the fresh venv"

    example = package / "src" / "wasmgen_stamp" / "examples" / "stamp.yaml"
    out = tmp_path / "out"
    for command in (["generate"], ["build"], ["test"], ["package"]):
        result = _run(wasmgen, *command, example, "-o", out)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
    assert "variant (wasmgen-stamp)" in (out / "README.md").read_text()
    assert "x-stamped-by: wasmgen-stamp" in (out / "deploy" / "wasm-plugin.yaml").read_text()
    assert (out / "plugin.wasm").is_file() and (out / "image" / "index.json").is_file()
    pushed = _run(wasmgen, "push", example, "-o", out, "--image", oci_registry.ref("stamp"))
    assert pushed.returncode == 0, pushed.stderr
    assert (out / "wasmgen.lock").is_file()

    own_tests = _run(bin_dir / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", package)
    assert own_tests.returncode == 0, own_tests.stdout + own_tests.stderr
    assert "4 passed" in own_tests.stdout and "warning" not in own_tests.stdout
