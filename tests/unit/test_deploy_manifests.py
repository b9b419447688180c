"""The Kubernetes manifests in deploy/k8s, checked offline: every object against its schema (Kubernetes
kinds with kubernetes-validate's bundled schemas, KEDA's with tests/fixtures/k8s/keda.schema.json), then
against each other and the code (roles, task queues, build id, replica budget, no secrets in clear).

Each broken copy below must fail, so a check that silently passes everything is caught too."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

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
    for (_, name), dep in by_kind(docs, "Deployment").items():
        for container in dep["spec"]["template"]["spec"]["containers"]:
            for var, e in env_of(container).items():
                if SECRET_NAME.search(var) and "value" in e:
                    out.append(f"{name}: {var} is given in clear; use valueFrom.secretKeyRef")
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


def problems(docs: list[Doc]) -> list[str]:
    """Every reason these manifests would not deploy as Chimera expects; empty when they are sound."""
    out = [p for d in docs for p in schema_problems(d)]
    if out:
        return out  # the cross checks below assume well-formed objects
    out += secret_problems(docs)
    out += scaling_problems(docs)
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
    assert kinds == ["ConfigMap", "Deployment", "ScaledObject", "TriggerAuthentication"]
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


BROKEN: dict[str, tuple[Callable[[list[Doc]], None], str]] = {
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
