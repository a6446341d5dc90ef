"""Stage 13: the pipeline for one spec, the only route the CLI and the public API take.

spec -> plan (+ the pin read from wasmgen.lock) -> test traffic -> backend sources + deploy
files -> disk -> compile -> check against the target host -> image -> registry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from wasmgen.artifacts import Changes, check_project, locked, write_project
from wasmgen.backends import render_sources
from wasmgen.backends.templating import save_compiled_templates
from wasmgen.deploy import deploy_files
from wasmgen.deploy.istio import istio_warnings
from wasmgen.errors import BuildError, Problem, RegistryError
from wasmgen.fsutil import write_atomic
from wasmgen.plan import Backend, Flavor, Pin, Plan, make_plan
from wasmgen.records import record
from wasmgen.semantics import Derived, derive_for
from wasmgen.ship.lock import read_lock
from wasmgen.spec.models import Spec
from wasmgen.variants import blame

if TYPE_CHECKING:  # the registry client (oras, requests) loads only when something is pushed
    from rich.console import Console

    # Compiling and checking modules load only for a build: generate never needs them.
    from wasmgen.build.compile import BuildResult
    from wasmgen.ship import oci
    from wasmgen.wasm.compat import CompatReport, Target

WASM_NAME = "plugin.wasm"
WARNED_FILE = ".wasmgen-warned.json"  # the build warnings already shown for this directory
IMAGE_DIR = "image"


@record
class Rendered:
    """Every file of a project, in memory, with the plan and derived traffic behind them."""

    plan: Plan
    derived: Derived
    files: dict[str, bytes]

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """What generation succeeded with but is worth a look: rules the derived test traffic
        cannot exercise, and rules Istio's own settings decide the fate of."""
        extra: tuple[Problem, ...] = ()
        if self.plan.touches_server:
            extra = (
                Problem(
                    "response",
                    "a rule changes `server`: Istio's sidecars and gateways overwrite it after the "
                    "filter chain (istio-envoy) unless the mesh sets "
                    "defaultConfig.proxyHeaders.server.disabled: true; the generated "
                    "deploy/envoy.yaml passes it through",
                ),
            )
        return self.derived.warnings + extra + istio_warnings(self.plan)


def render(
    spec: Spec, flavor: Flavor = "go", pin: Pin | None = None, *, backend: Backend | None = None
) -> Rendered:
    """Plan, derive test traffic, and render sources and deploy files; pure, no I/O."""
    plan = make_plan(spec, flavor, pin, backend)
    derived = derive_for(plan)
    with blame(plan.variant, plan.spec):  # a third-party variant's template errors name it
        files = {**render_sources(plan, derived.scenarios), **deploy_files(plan)}
    return Rendered(plan, derived, dict(sorted(files.items())))


def render_for(
    spec: Spec, out_dir: Path, flavor: Flavor = "go", *, backend: Backend | None = None
) -> Rendered:
    """render(), pinned to the image wasmgen.lock in out_dir records for this spec."""
    return render(spec, flavor, read_lock(out_dir, spec.name), backend=backend)


def generate(
    spec: Spec,
    out_dir: Path,
    flavor: Flavor = "go",
    force: bool = False,
    *,
    backend: Backend | None = None,
) -> Changes:
    """Write the project for spec into out_dir (manifests stay pinned to wasmgen.lock)."""
    with locked(out_dir):
        return _write(out_dir, render_for(spec, out_dir, flavor, backend=backend), force)


def _write(out_dir: Path, rendered: Rendered, force: bool) -> Changes:
    changes = write_project(out_dir, rendered.files, force=force)
    save_compiled_templates()  # only now: a refused or failed write leaves nothing behind
    changes.warnings.extend(rendered.warnings)
    return changes


def check(
    spec: Spec, out_dir: Path, flavor: Flavor = "go", *, backend: Backend | None = None
) -> tuple[Changes, str]:
    """Compare out_dir with what generate would write; the changes and a unified diff."""
    return check_project(out_dir, render_for(spec, out_dir, flavor, backend=backend).files)


@record
class Built:
    """A compiled plugin and what wasmgen knows about it."""

    out_dir: Path
    wasm: Path
    result: BuildResult
    compat: CompatReport
    changes: Changes
    plan: Plan


def build(
    spec: Spec,
    out_dir: Path,
    flavor: Flavor = "go",
    target: Target | None = None,
    force: bool = False,
    console: Console | None = None,
    *,
    backend: Backend | None = None,
) -> Built:
    """Generate into out_dir, compile plugin.wasm (cached), and refuse it if the target can't
    load it; out_dir stays locked throughout, so a concurrent writer cannot mix its sources in."""
    from wasmgen.wasm.compat import parse_target

    target = target or parse_target(None, None)
    if console is None:
        from rich.console import Console  # build only: generate never loads rich

        console = Console(stderr=True)
    with locked(out_dir):
        return _build_locked(spec, out_dir, flavor, target, force, console, backend)


def _build_locked(
    spec: Spec,
    out_dir: Path,
    flavor: Flavor,
    target: Target,
    force: bool,
    console: Console,
    backend: Backend | None,
) -> Built:
    from wasmgen.build.compile import compile_project
    from wasmgen.wasm.compat import check_compat

    pin = read_lock(out_dir, spec.name)
    rendered = render(spec, flavor, pin, backend=backend)
    changes = _write(out_dir, rendered, force)
    result = compile_project(out_dir, out_dir / WASM_NAME, flavor, console)
    if pin is not None and pin.wasm_sha256 not in (None, result.sha256):
        console.print(
            f"[yellow]note:[/] plugin.wasm changed since it was pushed as {pin.image}; "
            "manifests are unpinned until the next `wasmgen push`"
        )
        rendered = render(spec, flavor, None, backend=backend)
        changes = write_project(out_dir, rendered.files, force=force)
    from wasmgen.wasm.module import inspect_module

    info = inspect_module(result.path.read_bytes())
    compat = check_compat(info, target)
    shown = [] if console.quiet else _unseen(out_dir, list(compat.warnings))
    from rich.markup import escape

    for warning in shown:  # once per directory, whichever Envoy
        console.print(
            "[yellow]warning:[/] "
            + escape(
                f"{warning} (said once for {out_dir}; `wasmgen inspect {out_dir / WASM_NAME}` repeats it)"
            ),
            highlight=False,
        )
    if not compat.loadable:
        reasons = list(compat.problems)
        if compat.missing:
            reasons.append(
                f"it imports {len(compat.missing)} function(s) that host lacks: {compat.missing_names()}"
            )
        hint = None
        if flavor == "go" and target.wasi_set == "S15":
            hint = (
                "Envoy <= 1.32 (Istio <= 1.24) cannot load upstream Go wasip1 builds; use "
                "--toolchain tinygo (TinyGo 0.32-0.34) for that version, or target Istio >= 1.25"
            )
        raise BuildError(
            f"{result.path} cannot load on {target.name}: " + "; ".join(reasons), hint=hint
        )
    return Built(out_dir, result.path, result, compat, changes, rendered.plan)


def _unseen(out_dir: Path, warnings: list[str]) -> list[str]:
    """The warnings not yet shown for out_dir, now recorded there as shown: a long warning on
    every build, test and serve is noise (`wasmgen inspect` always shows them)."""
    record = out_dir / WARNED_FILE
    try:
        seen = set(json.loads(record.read_text()))
    except (OSError, ValueError, TypeError):
        seen = set()
    digests = {w: hashlib.sha256(w.encode()).hexdigest()[:16] for w in warnings}
    fresh = [w for w in warnings if digests[w] not in seen]
    if fresh:
        write_atomic(record, (json.dumps(sorted(seen | set(digests.values()))) + "\n").encode())
    return fresh


@record
class Packaged:
    """An image built from plugin.wasm and written as an OCI layout (and tarball)."""

    image: oci.Image
    layout: Path
    tarball: Path | None


def package(built: Built, fmt: oci.Format = "oci", tarball: bool = False) -> Packaged:
    """Build the image of the generated Dockerfile without Docker, into DIR/image/."""
    from wasmgen.ship import oci

    with locked(built.out_dir):
        image = oci.build_image(built.wasm.read_bytes(), fmt)
        layout = oci.write_layout(image, built.out_dir / IMAGE_DIR)
        tar = oci.write_layout_tar(image, built.out_dir / "image.tar") if tarball else None
    return Packaged(image, layout, tar)


def push(
    spec: Spec,
    built: Built,
    packaged: Packaged,
    reference: str,
    flavor: Flavor = "go",
    username: str | None = None,
    password: str | None = None,
    insecure: bool = False,
) -> Pin:
    """Push, read the manifest back to verify it, then pin the manifests to its digest."""
    from wasmgen.ship import registry
    from wasmgen.ship.reference import parse_reference

    ref = parse_reference(reference)
    result = registry.push(
        packaged.image, reference, username=username, password=password, insecure=insecure
    )
    pulled = registry.pull(
        f"{ref.registry}/{ref.repository}:{ref.tag}" if ref.tag else reference,
        username=username,
        password=password,
        insecure=insecure,
    )
    if pulled.digest != packaged.image.digest or pulled.manifest != packaged.image.manifest:
        raise RegistryError(
            f"{reference} reads back as {pulled.digest}, not the pushed {packaged.image.digest}",
            hint="another push to the same tag raced this one; push again",
        )
    image_ref = f"{ref.registry}/{ref.repository}" + (f":{ref.tag}" if ref.tag else "")
    pin = Pin(spec.name, image_ref, result.digest, built.result.sha256, packaged.image.format)
    write_project(
        built.out_dir, render(spec, flavor, pin, backend=built.plan.backend).files, force=False
    )
    return pin


def write_manifests(
    spec: Spec,
    out_dir: Path,
    pin: Pin | None,
    flavor: Flavor = "go",
    force: bool = False,
    *,
    backend: Backend | None = None,
) -> Changes:
    """Write the project with its manifests pinned to pin (or unpinned), without building."""
    with locked(out_dir):
        return _write(out_dir, render(spec, flavor, pin, backend=backend), force)
