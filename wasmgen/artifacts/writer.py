"""Write a rendered project to disk safely: ownership tracking, conflicts, stale files, --check.

Everything wasmgen touches stays inside the output directory: the ownership record is input
like any other and is refused when an entry points elsewhere, symlinks that lead out are
refused, a directory full of someone else's files is refused unless --force, and --force
keeps a NAME.orig backup of every hand-edited file it replaces or removes.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from dataclasses import field
from pathlib import Path

from wasmgen._version import __version__
from wasmgen.artifacts.lock import LOCK_FILE, check_location, leftovers, locked
from wasmgen.errors import Problem, WasmgenError
from wasmgen.fsutil import read_input, write_atomic
from wasmgen.records import record

OWNERSHIP_FILE = ".wasmgen-files.json"
_RECORD_HINT = "restore it from version control, or delete it and pass --force"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@record(frozen=False)
class Changes:
    """What writing a project would do, file by file."""

    create: list[str] = field(default_factory=list)
    update: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # not ours, or edited since we wrote them
    backups: list[str] = field(default_factory=list)  # NAME.orig copies --force kept
    warnings: list[Problem] = field(default_factory=list)  # generated, but worth a look

    @property
    def dirty(self) -> bool:
        """True when disk differs from the rendering."""
        return bool(self.create or self.update or self.delete)


@record
class Record:
    """What the last run wrote: file digests, and the directories it created."""

    files: dict[str, str] = field(default_factory=dict)
    dirs: tuple[str, ...] = ()


def _bad_entry(record: Path, entry: str, why: str) -> WasmgenError:
    return WasmgenError(f"{record}: entry {entry!r} {why}; nothing was changed", hint=_RECORD_HINT)


class Inside:
    """Relative paths checked to stay inside out_dir, which is resolved once, as is each
    directory the paths name: a project's thirty-odd files share a handful of directories, and
    resolving each file's whole path walked every component of it with lstat, twice per file
    and run. One per check: what it learns of the disk is not kept for later ones."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.root = os.path.realpath(out_dir)
        self._dirs: dict[str, str] = {"": self.root}

    def __call__(self, rel: str, what: str) -> Path:
        """out_dir/rel, refusing any path that is absolute, climbs out, or resolves outside."""
        parts = rel.split("/")
        if not rel or rel.startswith("/") or "\\" in rel or "\0" in rel:
            raise WasmgenError(f"{what} {rel!r} is not a relative path inside {self.out_dir}")
        if any(part in ("", ".", "..") for part in parts):
            raise WasmgenError(
                f"{what} {rel!r} leaves {self.out_dir} or is not a plain relative path"
            )
        folder, _, name = rel.rpartition("/")
        real_folder = self._dirs.get(folder)
        if real_folder is None:
            real_folder = self._dirs[folder] = os.path.realpath(self.out_dir / folder)
        real = os.path.join(real_folder, name)  # what realpath gives unless name is a symlink
        if os.path.islink(real):
            real = os.path.realpath(real)
        if not Path(real).is_relative_to(self.root):
            raise WasmgenError(
                f"{what} {rel!r} resolves to {real}, outside {self.out_dir} (a symlink?)",
                hint="wasmgen only writes inside the output directory; remove the symlink",
            )
        return self.out_dir / rel


# A record lists a project's files: a few KiB; anything near this is not one of wasmgen's.
MAX_RECORD_BYTES = 4 * 1024 * 1024


def read_record(out_dir: Path) -> Record:
    """The ownership record of out_dir, every entry checked to lie inside out_dir."""
    path = out_dir / OWNERSHIP_FILE
    if not path.is_file():
        return Record()
    try:
        data = json.loads(read_input(path, MAX_RECORD_BYTES, hint=_RECORD_HINT))
        files = data["files"]
        dirs = data.get("dirs")
        if not isinstance(files, dict) or not isinstance(dirs, list | None):
            raise TypeError
        entries = {str(k): str(v) for k, v in files.items()}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise WasmgenError(f"{path} is not a wasmgen ownership record", hint=_RECORD_HINT) from None
    if dirs is None:  # records from before wasmgen tracked directories: their parents
        dirs = sorted({p.rsplit("/", 1)[0] for p in entries if "/" in p})
    inside = Inside(out_dir)
    for entry in [*entries, *map(str, dirs)]:
        try:
            inside(entry, "entry")
        except WasmgenError as exc:
            raise _bad_entry(path, entry, exc.message.split(" ", 2)[-1]) from None
    return Record(entries, tuple(sorted(map(str, dirs))))


def ownership_record(files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> bytes:
    """The record of what wasmgen wrote, so the next run can tell its files from the user's."""
    body = {
        "generator": f"wasmgen {__version__}",
        "files": {p: _sha(b) for p, b in sorted(files.items())},
        "dirs": sorted(dirs),
    }
    return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


def _new_dirs(out_dir: Path, rels: list[str]) -> set[str]:
    """Directories (relative) that writing rels would create."""
    made: set[str] = set()
    for rel in rels:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if not (out_dir / sub).exists():
                made.add(sub)
    return made


def plan_changes(out_dir: Path, files: dict[str, bytes]) -> Changes:
    """Classify each file as create / update / unchanged / delete / conflict."""
    check_location(out_dir)
    owned = read_record(out_dir).files if out_dir.is_dir() else {}
    changes = Changes()
    inside = Inside(out_dir)
    for rel, data in files.items():
        path = inside(rel, "output file")
        if not path.exists() and not path.is_symlink():
            changes.create.append(rel)
            continue
        if path.is_dir() or not path.is_file():
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
        if not path.is_file() or path.is_symlink():
            continue
        if _sha(path.read_bytes()) == digest:
            changes.delete.append(rel)
        else:
            changes.conflicts.append(rel)
    return changes


def _foreign_files(out_dir: Path) -> list[str]:
    """What a directory holds when wasmgen has never written to it."""
    if not out_dir.is_dir() or (out_dir / OWNERSHIP_FILE).exists():
        return []
    return sorted(p.name for p in out_dir.iterdir() if p.name != LOCK_FILE)


def write_project(out_dir: Path, files: dict[str, bytes], force: bool = False) -> Changes:
    """Write files into out_dir, holding its lock; refuse to clobber foreign or edited files
    unless force."""
    check_location(out_dir)
    with locked(out_dir):
        return _write_locked(out_dir, files, force)


def _write_locked(out_dir: Path, files: dict[str, bytes], force: bool) -> Changes:
    record = read_record(out_dir) if out_dir.is_dir() else Record()
    foreign = _foreign_files(out_dir)
    changes = plan_changes(out_dir, {**files, OWNERSHIP_FILE: b""})
    for bucket in (changes.conflicts, changes.create, changes.update, changes.unchanged):
        if OWNERSHIP_FILE in bucket:  # the record is always ours; it is rewritten below
            bucket.remove(OWNERSHIP_FILE)
    if not force and (changes.conflicts or foreign):
        if changes.conflicts:
            listed = "\n  ".join(changes.conflicts)
            message = f"refusing to overwrite files wasmgen did not write (or that were edited since) in {out_dir}:\n  {listed}"
        else:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            message = (
                f"refusing to write into {out_dir}: it holds files wasmgen did not write ({shown})"
            )
        raise WasmgenError(
            message,
            hint="choose a new or empty directory with -o, move them away, or pass --force "
            "(wasmgen then keeps NAME.orig copies of the files it replaces)",
        )
    for rel in changes.conflicts:
        if (out_dir / rel).is_dir():
            raise WasmgenError(
                f"{out_dir / rel} is a directory; wasmgen needs to write a file there"
            )
        (changes.update if rel in files else changes.delete).append(rel)
    backup = changes.conflicts
    changes.conflicts = []
    writes = changes.create + changes.update
    created = _new_dirs(out_dir, writes)
    kept = {d for d in record.dirs if (out_dir / d).is_dir()}
    full = {**files, OWNERSHIP_FILE: ownership_record(files, tuple(sorted(kept | created)))}
    (changes.update if (out_dir / OWNERSHIP_FILE).is_file() else changes.create).append(
        OWNERSHIP_FILE
    )
    _apply(out_dir, full, changes, backup, kept | created)
    return changes


def _backup_name(path: Path) -> Path:
    candidate = path.with_name(path.name + ".orig")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.orig.{n}")
        n += 1
    return candidate


def _apply(
    out_dir: Path, files: dict[str, bytes], changes: Changes, backup: list[str], dirs: set[str]
) -> None:
    """Write and delete, restoring the previous state if anything fails midway."""
    previous: dict[Path, bytes | None] = {}
    made: list[Path] = []
    made_root = not out_dir.exists() or {p.name for p in out_dir.iterdir()} <= {LOCK_FILE}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for rel in backup:
            path = out_dir / rel
            copy = _backup_name(path)
            write_atomic(copy, path.read_bytes())
            made.append(copy)
            changes.backups.append(copy.relative_to(out_dir).as_posix())
        for rel in changes.create + changes.update:
            path = out_dir / rel
            previous[path] = path.read_bytes() if path.is_file() else None
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, files[rel], 0o755 if files[rel].startswith(b"#!") else 0o644)
        for rel in changes.delete:
            path = out_dir / rel
            previous[path] = path.read_bytes()
            path.unlink()
            _prune_empty(path.parent, out_dir, dirs)
    except OSError as exc:
        for path, old in previous.items():
            if old is None:
                path.unlink(missing_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(old)
        for copy in made:
            copy.unlink(missing_ok=True)
        if made_root and out_dir.is_dir():
            _remove_tree_if_ours(out_dir)
        raise WasmgenError(f"cannot write {out_dir}: {exc.strerror or exc}") from None


def _prune_empty(folder: Path, root: Path, dirs: set[str]) -> None:
    """Remove emptied directories wasmgen created, up to (never including) root."""
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        if folder.relative_to(root).as_posix() not in dirs:
            return
        folder.rmdir()
        folder = folder.parent


def _remove_tree_if_ours(root: Path) -> None:
    """Empty root again, but for its lock (whose holder removes it, and root if it made it)."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        elif path != root / LOCK_FILE:
            path.unlink()


def check_project(out_dir: Path, files: dict[str, bytes]) -> tuple[Changes, str]:
    """Compare disk with the rendering; return the changes and a unified diff."""
    record = read_record(out_dir) if out_dir.is_dir() else Record()
    kept = {d for d in record.dirs if (out_dir / d).is_dir()}
    created = _new_dirs(out_dir, list(files))
    files = {**files, OWNERSHIP_FILE: ownership_record(files, tuple(sorted(kept | created)))}
    changes = plan_changes(out_dir, files)
    if OWNERSHIP_FILE in changes.conflicts:
        changes.conflicts.remove(OWNERSHIP_FILE)
        changes.update.append(OWNERSHIP_FILE)
    changes.delete.extend(leftovers(out_dir))  # an interrupted run's; the next writer removes them
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


__all__ = ["OWNERSHIP_FILE", "Changes", "Inside", "check_project", "read_record", "write_project"]
