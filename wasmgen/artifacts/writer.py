"""Write a rendered project to disk safely: ownership tracking, conflicts, stale files, --check."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from wasmgen._version import __version__
from wasmgen.errors import Problem, WasmgenError
from wasmgen.fsutil import write_atomic

OWNERSHIP_FILE = ".wasmgen-files.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Changes:
    """What writing a project would do, file by file."""

    create: list[str] = field(default_factory=list)
    update: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # not ours, or edited since we wrote them
    warnings: list[Problem] = field(default_factory=list)  # generated, but worth a look

    @property
    def dirty(self) -> bool:
        """True when disk differs from the rendering."""
        return bool(self.create or self.update or self.delete)


def _owned(out_dir: Path) -> dict[str, str]:
    path = out_dir / OWNERSHIP_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        files = data["files"]
        if not isinstance(files, dict):
            raise TypeError
        return {str(k): str(v) for k, v in files.items()}
    except (ValueError, KeyError, TypeError):
        raise WasmgenError(
            f"{path} is not a wasmgen ownership record",
            hint="restore it from version control, or delete it and pass --force",
        ) from None


def ownership_record(files: dict[str, bytes]) -> bytes:
    """The record of what wasmgen wrote, so the next run can tell its files from the user's."""
    body = {
        "generator": f"wasmgen {__version__}",
        "files": {p: _sha(b) for p, b in sorted(files.items())},
    }
    return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


def plan_changes(out_dir: Path, files: dict[str, bytes]) -> Changes:
    """Classify each file as create / update / unchanged / delete / conflict."""
    owned = _owned(out_dir) if out_dir.is_dir() else {}
    changes = Changes()
    for rel, data in files.items():
        path = out_dir / rel
        if not path.exists():
            changes.create.append(rel)
            continue
        if path.is_dir():
            changes.conflicts.append(rel)
            continue
        current = path.read_bytes()
        if current == data:
            changes.unchanged.append(rel)
        elif owned.get(rel) == _sha(current):
            changes.update.append(rel)
        else:
            changes.conflicts.append(rel)
    for rel, digest in sorted(owned.items()):
        if rel in files:
            continue
        path = out_dir / rel
        if not path.is_file():
            continue
        if _sha(path.read_bytes()) == digest:
            changes.delete.append(rel)
        else:
            changes.conflicts.append(rel)
    return changes


def write_project(out_dir: Path, files: dict[str, bytes], force: bool = False) -> Changes:
    """Write files into out_dir; refuse to clobber foreign or edited files unless force."""
    files = {**files, OWNERSHIP_FILE: b""}
    files[OWNERSHIP_FILE] = ownership_record(
        {k: v for k, v in files.items() if k != OWNERSHIP_FILE}
    )
    changes = plan_changes(out_dir, files)
    if OWNERSHIP_FILE in changes.conflicts:  # the record never lists itself; it is always ours
        changes.conflicts.remove(OWNERSHIP_FILE)
        changes.update.append(OWNERSHIP_FILE)
    conflicts = changes.conflicts
    if conflicts and not force:
        listed = "\n  ".join(conflicts)
        raise WasmgenError(
            f"refusing to overwrite files wasmgen did not write (or that were edited since) in {out_dir}:\n  {listed}",
            hint="move them away, or pass --force to overwrite them",
        )
    if force:
        for rel in changes.conflicts:
            (changes.update if rel in files else changes.delete).append(rel)
        changes.conflicts = []
    _apply(out_dir, files, changes)
    return changes


def _apply(out_dir: Path, files: dict[str, bytes], changes: Changes) -> None:
    """Write and delete, restoring the previous state if anything fails midway."""
    backups: dict[Path, bytes | None] = {}
    made_root = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for rel in changes.create + changes.update:
            path = out_dir / rel
            backups[path] = path.read_bytes() if path.is_file() else None
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, files[rel], 0o755 if files[rel].startswith(b"#!") else 0o644)
        for rel in changes.delete:
            path = out_dir / rel
            backups[path] = path.read_bytes()
            path.unlink()
            _prune_empty(path.parent, out_dir)
    except OSError as exc:
        for path, old in backups.items():
            if old is None:
                path.unlink(missing_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(old)
        if made_root:
            _remove_tree_if_ours(out_dir)
        raise WasmgenError(f"cannot write {out_dir}: {exc.strerror or exc}") from None


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _remove_tree_if_ours(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()
    root.rmdir()


def check_project(out_dir: Path, files: dict[str, bytes]) -> tuple[Changes, str]:
    """Compare disk with the rendering; return the changes and a unified diff."""
    files = {**files, OWNERSHIP_FILE: ownership_record(files)}
    changes = plan_changes(out_dir, files)
    if OWNERSHIP_FILE in changes.conflicts:
        changes.conflicts.remove(OWNERSHIP_FILE)
        changes.update.append(OWNERSHIP_FILE)
    chunks: list[str] = []
    for rel in sorted(changes.create + changes.update + changes.conflicts + changes.delete):
        path = out_dir / rel
        old = path.read_bytes().decode(errors="replace") if path.is_file() else ""
        new = files[rel].decode(errors="replace") if rel in files else ""
        chunks.extend(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=f"a/{rel}",
                tofile=f"b/{rel}",
            )
        )
    if changes.conflicts:
        changes.update.extend(c for c in changes.conflicts if c in files)
        changes.delete.extend(c for c in changes.conflicts if c not in files)
    return changes, "".join(chunks)
