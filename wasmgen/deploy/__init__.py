"""Stage 5: the deployment files of a project, built as data from the plan.

Istio WasmPlugin, Envoy Gateway EnvoyExtensionPolicy, a standalone Envoy bootstrap, the
lab's sample workloads and a verify script; pinned to a pushed image when the plan has a pin.
"""

from __future__ import annotations

from wasmgen.deploy.files import deploy_files, deployment

__all__ = ["deploy_files", "deployment"]
