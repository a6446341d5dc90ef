"""The lab's sample workloads: httpbin and the sleep client."""

from __future__ import annotations

from typing import Any


def sample_workloads(namespace: str | None = None) -> list[dict[str, Any]]:
    """The lab's httpbin and Istio's sleep client: ServiceAccount, Service, Deployment each."""
    httpbin_pod = {
        "serviceAccountName": "httpbin",
        "containers": [
            {
                "image": "docker.io/kennethreitz/httpbin",
                "imagePullPolicy": "IfNotPresent",
                "name": "httpbin",
                "ports": [{"containerPort": 80}],
            }
        ],
    }
    sleep_pod = {
        "terminationGracePeriodSeconds": 0,
        "serviceAccountName": "sleep",
        "containers": [
            {
                "name": "sleep",
                "image": "curlimages/curl:8.16.0",
                "command": ["/bin/sleep", "infinity"],
                "imagePullPolicy": "IfNotPresent",
                "volumeMounts": [{"mountPath": "/etc/sleep/tls", "name": "secret-volume"}],
            }
        ],
        "volumes": [
            {
                "name": "secret-volume",
                "secret": {"secretName": "sleep-secret", "optional": True},
            }
        ],
    }
    docs = [
        *_app(
            "httpbin",
            [{"name": "http", "port": 8000, "targetPort": 80}],
            {"app": "httpbin", "version": "v1"},
            httpbin_pod,
        ),
        *_app("sleep", [{"port": 80, "name": "http"}], {"app": "sleep"}, sleep_pod),
    ]
    if namespace is not None:
        for doc in docs:
            doc["metadata"]["namespace"] = namespace
    return docs


def _app(
    name: str, ports: list[dict[str, Any]], labels: dict[str, str], pod: dict[str, Any]
) -> list[dict[str, Any]]:
    """ServiceAccount, Service and Deployment of one sample app."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": {"app": name, "service": name}},
            "spec": {"ports": ports, "selector": {"app": name}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": dict(labels)},
                "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
            },
        },
    ]
