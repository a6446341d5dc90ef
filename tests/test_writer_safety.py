"""wasmgen never touches anything outside its output directory, whatever the directory holds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, run_cli, snapshot
from wasmgen.artifacts import writer
from wasmgen.errors import WasmgenError

SPEC = next(e for e in EXAMPLES if e.stem == "seed-lab")
RECORD = ".wasmgen-files.json"


def _generated(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    result = run_cli("generate", SPEC, "-o", out)
    assert result.code == 0, result.stderr
    return out


def _add_entry(out: Path, entry: str, digest: str) -> None:
    record = json.loads((out / RECORD).read_text())
    record["files"][entry] = digest
    (out / RECORD).write_text(json.dumps(record))


@pytest.mark.parametrize("style", ["absolute", "dotdot", "symlinked-dir"])
@pytest.mark.parametrize("force", [False, True])
def test_record_entries_outside_the_directory_are_refused(
    tmp_path: Path, style: str, force: bool
) -> None:
    """A record naming a file elsewhere (absolute, `..`, or through a symlink) deletes nothing."""
    out = _generated(tmp_path)
    victim_dir = tmp_path / "elsewhere"
    victim_dir.mkdir()
    victim = victim_dir / "precious.txt"
    victim.write_text("do not delete\n")
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    if style == "absolute":
        entry = str(victim)
    elif style == "dotdot":
        entry = "../elsewhere/precious.txt"
    else:
        (out / "link").symlink_to(victim_dir)
        entry = "link/precious.txt"
    _add_entry(out, entry, digest)
    before = snapshot(out)
    result = run_cli("generate", SPEC, "-o", out, *(["--force"] if force else []))
    assert result.code == 2, result.stdout + result.stderr
    assert entry in result.stderr and "nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
    assert victim.read_text() == "do not delete\n"
    assert snapshot(out) == before


def test_writing_through_a_symlink_that_leaves_the_directory_is_refused(tmp_path: Path) -> None:
    """deploy/ pointing elsewhere is not followed: nothing is written there."""
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "system"
    target.mkdir()
    (out / "deploy").symlink_to(target)
    result = run_cli("generate", SPEC, "-o", out, "--force")
    assert result.code == 2 and "outside" in result.stderr, result.stderr
    assert list(target.iterdir()) == []


def test_a_generated_file_replaced_by_a_symlink_out_is_not_written_through(
    tmp_path: Path,
) -> None:
    """A file of the project that has become a symlink to a file elsewhere is refused, even
    with --force: the file it points to keeps its bytes."""
    out = _generated(tmp_path)
    victim = tmp_path / "precious.txt"
    victim.write_text("do not overwrite\n")
    (out / "deploy" / "envoy.yaml").unlink()
    (out / "deploy" / "envoy.yaml").symlink_to(victim)
    result = run_cli("generate", SPEC, "-o", out, "--force")
    assert result.code == 2 and "outside" in result.stderr, result.stderr
    assert "deploy/envoy.yaml" in result.stderr
    assert victim.read_text() == "do not overwrite\n"


def test_inside_agrees_with_resolving_each_whole_path(tmp_path: Path) -> None:
    """Inside resolves each directory once, then only a final component that is a symlink;
    for every path of a tree of links (in, out, chained, dangling, through a linked folder) it
    refuses exactly the ones whose fully resolved path leaves the directory."""
    out = tmp_path / "out"
    (out / "a" / "b").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "f").write_text("x")
    (out / "a" / "file").write_text("x")
    links = {
        "a/in": "file",  # a sibling, inside
        "a/out": "../../elsewhere/f",  # a file outside
        "a/chain": "out",  # to a link that leaves
        "a/dangling-in": "missing",  # nothing there, inside
        "a/dangling-out": "/nonexistent/x",  # nothing there, outside
        "linked-in": "a/b",  # a folder inside
        "linked-out": "../elsewhere",  # a folder outside
        "a/b/up": "..",  # back up, still inside
        "a/b/top": "../../..",  # the directory's parent
    }
    for rel, target in links.items():
        (out / rel).symlink_to(target)
    names = [*links, "a/file", "a/new", "new/deeper/file", "linked-in/x", "linked-out/f",
             "linked-out/new", "a/b/up/file", "a/b/top/elsewhere", "linked-in/up/in"]  # fmt: skip
    inside = writer.Inside(out)
    for rel in names:
        leaves = not (out / rel).resolve().is_relative_to(out.resolve())
        if leaves:
            with pytest.raises(WasmgenError, match="outside"):
                inside(rel, "output file")
        else:
            assert inside(rel, "output file") == out / rel
    assert sum(not (out / r).resolve().is_relative_to(out.resolve()) for r in names) == 8


@pytest.mark.parametrize("where", ["home", "root-like"])
def test_directories_holding_other_files_need_force(tmp_path: Path, where: str) -> None:
    """-o $HOME (or any directory full of someone else's files) is refused without --force."""
    out = tmp_path / where
    out.mkdir()
    (out / ".bashrc").write_text("alias ll='ls -l'\n")
    (out / "Documents").mkdir()
    before = snapshot(out)
    env = {"HOME": str(out)} if where == "home" else None
    result = run_cli("generate", SPEC, "-o", out, env=env)
    assert result.code == 2 and "--force" in result.stderr, result.stderr
    assert snapshot(out) == before and not (out / "main.go").exists()
    forced = run_cli("generate", SPEC, "-o", out, "--force", env=env)
    assert forced.code == 0, forced.stderr
    assert (out / ".bashrc").read_text() == "alias ll='ls -l'\n"


def test_force_keeps_a_backup_of_hand_edited_files(tmp_path: Path) -> None:
    """--force replaces or removes edited files only after copying them to NAME.orig."""
    out = _generated(tmp_path)
    (out / "README.md").write_text("my notes\n")
    (out / "deploy" / "verify.sh").write_text("#!/bin/sh\n# my own checks\n")
    other = next(e for e in EXAMPLES if e.stem == "request-guard")  # no verify.sh
    result = run_cli("generate", other, "-o", out, "--force")
    assert result.code == 0, result.stderr
    assert (out / "README.md.orig").read_text() == "my notes\n"
    assert (out / "deploy" / "verify.sh.orig").read_text() == "#!/bin/sh\n# my own checks\n"
    assert not (out / "deploy" / "verify.sh").exists()
    assert "README.md.orig" in result.stdout and "deploy/verify.sh.orig" in result.stdout


def test_directories_wasmgen_did_not_create_are_never_removed(tmp_path: Path) -> None:
    """A stale file is removed, but an emptied folder the user made stays."""
    out = _generated(tmp_path)
    mine = out / "notes"
    mine.mkdir()
    (mine / "old.yaml").write_text("old\n")
    _add_entry(out, "notes/old.yaml", hashlib.sha256(b"old\n").hexdigest())
    result = run_cli("generate", SPEC, "-o", out)
    assert result.code == 0, result.stderr
    assert not (mine / "old.yaml").exists() and mine.is_dir()


def test_output_under_a_file_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    """-o FILE/sub: a clear error, exit 2, no traceback, the file untouched."""
    blocker = tmp_path / "file"
    blocker.write_text("x\n")
    result = run_cli("generate", SPEC, "-o", blocker / "sub")
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "is a file" in result.stderr
    assert blocker.read_text() == "x\n"


def test_unwritable_directory_is_an_error_not_a_traceback() -> None:
    """A directory nobody may write (here in /proc, refused even to root): exit 2, one line."""
    result = run_cli("generate", SPEC, "-o", "/proc/self/wasmgen-out")
    assert result.code == 2 and "Traceback" not in result.stderr, result.stderr
    assert "cannot write /proc/self/wasmgen-out" in result.stderr
