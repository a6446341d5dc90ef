"""No command imports what it does not use: the import set of each light command, guarded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT

# Heavy packages and what needs them: the wasm engine (the embedded host, inspect, build's
# module check), the registry client (push), the Python formatter (the --python emitters),
# rich (build's and serve's coloured output; plain lines are written as they are). ruamel is
# no longer wasmgen's at all (libyaml reads specs and writes manifests): only the tests use it.
HEAVY = ("wasmtime", "oras", "requests", "black", "urllib3", "hypothesis", "rich", "ruamel")

# Runs the CLI in this process and prints, at exit, which of HEAVY were imported.
_PROBE = """
import atexit, json, sys
heavy = {heavy!r}
atexit.register(lambda: print("IMPORTED=" + json.dumps(
    sorted(m for m in sys.modules if m.split(".")[0] in heavy)), file=sys.stderr))
sys.argv = ["wasmgen", *{args!r}]
from wasmgen.cli import main
main()
"""


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """code run by a fresh interpreter on this checkout."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def imported(args: list[str], cwd: Path) -> set[str]:
    """The HEAVY top-level packages a CLI run imported (the run must succeed)."""
    proc = _python(_PROBE.format(heavy=HEAVY, args=args), cwd)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("IMPORTED="))
    return {name.split(".")[0] for name in json.loads(line.removeprefix("IMPORTED="))}


LAB = str(ROOT / "examples" / "seed-lab.yaml")


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["generate", LAB, "-o", "out"], set()),
        (["generate", LAB, "-o", "out", "--check"], set()),
        (["schema"], set()),
        (["init", "spec.yaml"], set()),
        (["manifests", LAB, "-o", "out"], set()),
        # The Python emitters format with black, and need nothing else.
        (["init", "--python", "spec.py"], {"black"}),
        (["export", LAB, "--python"], {"black"}),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_light_commands_import_no_heavy_package(
    tmp_path: Path, args: list[str], allowed: set[str]
) -> None:
    """generate, check, schema, init, export and manifests never load the wasm engine, the
    registry client or (outside --python) black; a cold run pays for what it uses only."""
    if "--check" in args:  # compare against a project that exists
        imported(["generate", LAB, "-o", "out"], tmp_path)
    assert imported(args, tmp_path) == allowed


def test_the_probe_sees_heavy_imports(tmp_path: Path) -> None:
    """The guard itself can fail: inspect validates a module with wasmtime, and is seen to."""
    wasm = tmp_path / "m.wasm"
    wasm.write_bytes(b"\0asm\x01\0\0\0")
    proc = _python(_PROBE.format(heavy=HEAVY, args=["inspect", str(wasm)]), tmp_path)
    assert "IMPORTED=" in proc.stderr and '"wasmtime' in proc.stderr, proc.stderr


def test_compiled_templates_are_kept_only_after_a_successful_write(tmp_path: Path) -> None:
    """The template cache fills when generate wrote its project, never on a refusal."""
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WASMGEN_CACHE_DIR": str(cache)}
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# someone's\n")
    argv = [sys.executable, "-m", "wasmgen", "generate", LAB, "-o"]
    refused = subprocess.run([*argv, str(home)], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and not cache.exists(), refused.stderr
    done = subprocess.run([*argv, str(tmp_path / "out")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.suffix for p in (cache / "jinja").iterdir())[:1] == [".cache"]


def test_a_command_runs_in_an_app_of_its_own_with_the_same_help() -> None:
    """main() hands typer only the command being run (typer then builds one command's options,
    not every command's); its help is the same as the whole app's, and anything that is not
    one command (--help, no command, an unknown one) gets the whole app."""
    from typer.main import get_command

    from wasmgen.cli.main import for_command, whole_app

    app = whole_app()
    whole = get_command(app)
    names = sorted(whole.commands)  # type: ignore[attr-defined]
    assert {"generate", "build", "test", "envoy"} <= set(names)
    for name in names:
        slim = for_command(["--debug", name, "x"])
        assert slim is not app
        one = get_command(slim)
        assert list(one.commands) == [name]  # type: ignore[attr-defined]
        assert one.commands[name].get_help(_context(one, name)) == whole.commands[name].get_help(  # type: ignore[attr-defined]
            _context(whole, name)
        )
    for argv in ([], ["--help"], ["--debug"], ["bogus"], ["--version"]):
        assert for_command(argv) is app


def test_each_command_is_found_in_the_module_that_registers_it() -> None:
    """main() imports only the running command's module, found in COMMANDS: the table names
    every command of the whole app, each in the module that defines it, in --help's order."""
    from wasmgen.cli.main import COMMANDS, _name, whole_app

    app = whole_app()
    registered = [
        (c.callback.__module__ if c.callback else "", _name(c)) for c in app.registered_commands
    ] + [
        (g.typer_instance.registered_commands[0].callback.__module__, g.name)  # type: ignore[union-attr]
        for g in app.registered_groups
    ]
    table = [(module, name) for module, names in COMMANDS.items() for name in names]
    assert sorted(registered) == sorted(table)
    assert [n for _, n in registered[: len(app.registered_commands)]] == [
        n for _, n in table if n not in {g.name for g in app.registered_groups}
    ]


def test_a_command_loads_no_other_command_module(tmp_path: Path) -> None:
    """generate runs with its own command module only: serve's, ship's, test's and the
    others' modules (and the stages behind them) stay unloaded."""
    probe = (
        "import sys\n"
        f"sys.argv = ['wasmgen', 'generate', {LAB!r}, '-o', 'out']\n"
        "from wasmgen.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('wasmgen.cli.')))\n"
    )
    proc = _python(probe, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == str(
        ["wasmgen.cli.app", "wasmgen.cli.main", "wasmgen.cli.project"]
    )


def _context(group: Any, name: str) -> Any:
    """A click context for group's command name (typer carries its own copy of click)."""
    parent = group.context_class(group, info_name="wasmgen")
    return group.context_class(group.commands[name], info_name=name, parent=parent)


def test_loading_every_module_later_leaves_the_public_api_alone() -> None:
    """Stages load on first use; none of those late imports may rebind a public name of the
    package (wasmgen.build is a function and a stage package at once)."""
    probe = (
        "import importlib, pkgutil, wasmgen\n"
        "before = {n: getattr(wasmgen, n) for n in wasmgen.__all__}\n"
        "for m in pkgutil.walk_packages(wasmgen.__path__, 'wasmgen.'):\n"
        "    if not m.name.startswith('wasmgen.cli'):\n"
        "        importlib.import_module(m.name)\n"
        "changed = [n for n in wasmgen.__all__ if getattr(wasmgen, n) is not before[n]]\n"
        "assert not changed, changed\n"
        "assert callable(wasmgen.build) and wasmgen.build.__module__ == 'wasmgen.api'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_import_wasmgen_loads_names_on_first_use() -> None:
    """`import wasmgen` loads five small modules; each public name loads its stage when first
    read, and every name in __all__ and dir() resolves, as do stages read as attributes."""
    probe = (
        "import sys, wasmgen\n"
        "print(sorted(m for m in sys.modules if m.startswith('wasmgen')))\n"
        "assert 'wasmgen.spec' not in sys.modules\n"
        "assert wasmgen.Plugin.__module__ == 'wasmgen.spec.dsl' and 'wasmgen.spec' in sys.modules\n"
        "assert 'wasmgen.pipeline' not in sys.modules\n"
        "assert all(getattr(wasmgen, n) is not None for n in wasmgen.__all__)\n"
        "assert set(wasmgen.__all__) <= set(dir(wasmgen))\n"
        "assert wasmgen.semantics.relevance.__name__ == 'wasmgen.semantics.relevance'\n"
        "try:\n    wasmgen.no_such_name\nexcept AttributeError as exc:\n    print(exc)\n"
    )
    proc = _python(probe, ROOT)
    assert proc.returncode == 0, proc.stderr
    loaded, missing = proc.stdout.splitlines()
    assert loaded == str(
        ["wasmgen", "wasmgen._version", "wasmgen.build", "wasmgen.errors", "wasmgen.records"]
    )
    assert missing == "module 'wasmgen' has no attribute 'no_such_name'"


# Runs the console entry point and records, for every collection the cyclic garbage collector
# makes, whether typer (the first of the stack) had begun to load and whether anything was frozen
# yet; at exit, the collector's state.
_GC_PROBE = """
import atexit, gc, json, sys
runs = []
gc.callbacks.append(lambda phase, info: phase == "start" and runs.append(
    ("typer" in sys.modules, gc.get_freeze_count() > 0)))
atexit.register(lambda: print(gc.isenabled(), gc.get_freeze_count(), json.dumps(runs),
                              file=sys.stderr))
sys.argv = ["wasmgen", *{args!r}]
from wasmgen.__main__ import run
run()
"""


@pytest.mark.parametrize("args", [["generate", LAB, "-o", "out"], ["--help"]])
def test_the_collector_sleeps_through_start_up(args: list[str], tmp_path: Path) -> None:
    """A CLI process imports its stack and command with the cyclic collector off (a collection
    there walks every new class and function and frees nothing), then freezes what is loaded and
    runs the command with the collector on: every collection comes after the freeze."""
    proc = _python(_GC_PROBE.format(args=args), tmp_path)
    assert proc.returncode == 0, proc.stderr
    enabled, frozen, runs = proc.stderr.splitlines()[-1].split(" ", 2)
    assert enabled == "True"
    assert int(frozen) > 50_000  # typer, pydantic, jinja2 and wasmgen's modules
    assert all(after for loading, after in json.loads(runs) if loading), runs


def test_the_benchmark_floor_does_the_same_job_without_wasmgen(tmp_path: Path) -> None:
    """benchmark_cold's floor (tests/cold_floor.py) parses generate's arguments, validates the
    lab spec and writes a rendered file, and never loads a module of wasmgen: what generate
    costs over it is wasmgen's own."""
    probe = (
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print('WASMGEN=' + ','.join(sorted(\n"
        "    m for m in sys.modules if m.split('.')[0] == 'wasmgen')), file=sys.stderr))\n"
        f"sys.argv = ['cold_floor.py', 'generate', {LAB!r}, '-o', {str(tmp_path / 'out')!r}]\n"
        f"runpy.run_path({str(ROOT / 'tests' / 'cold_floor.py')!r}, run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "WASMGEN=\n" in proc.stderr, proc.stderr
    written = (tmp_path / "out" / "floor.go").read_text()
    assert written.startswith("// wasm-example: 1 response rules\n"), written
    assert '"header_1": "first_header"' in written
