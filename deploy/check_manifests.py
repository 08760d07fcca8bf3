"""What schema validation cannot see in deploy/: that the objects fit together.

    python check_manifests.py postgres|sqlite RENDERED.yaml   # a rendered kustomize overlay
    python check_manifests.py compose compose.yaml

Kubernetes: the Service selects the server pods; servers probe /healthz (liveness, startup) and
/readyz (readiness), take the master key from a Secret, run as non-root on a read-only root
file system; the postgres overlay has the Deployment, the `tessera migrate` Job, a
PodDisruptionBudget and a CPU autoscaler of that Deployment; the sqlite overlay one StatefulSet
replica and nothing that would scale it. Compose: PostgreSQL, the migration, two nodes with the
same shared settings, and a balancer that checks /readyz of both. Exits 1 with the reasons.
"""

import pathlib
import sys

import yaml

problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def check_server_container(kind, container):
    where = f"{kind} container {container['name']}"
    probes = {
        "livenessProbe": "/healthz",
        "startupProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    for probe, path in probes.items():
        got = container.get(probe, {}).get("httpGet", {}).get("path")
        check(got == path, f"{where}: {probe} must GET {path}, has {got}")
    env = env_of(container)
    key = env.get("TESSERA_MASTER_KEY", {})
    check("secretKeyRef" in key.get("valueFrom", {}), f"{where}: TESSERA_MASTER_KEY must come from a Secret")
    check("value" not in key, f"{where}: the master key must never be written into the manifest")
    check(container.get("args") == ["serve"], f"{where}: args must be [serve]")


def check_hardened(kind, spec):
    pod = spec.get("securityContext", {})
    check(pod.get("runAsNonRoot") is True, f"{kind}: runAsNonRoot")
    check(pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{kind}: seccomp RuntimeDefault")
    check(spec.get("automountServiceAccountToken") is False, f"{kind}: no service account token")
    for container in spec["containers"]:
        sc = container.get("securityContext", {})
        check(sc.get("readOnlyRootFilesystem") is True, f"{kind}/{container['name']}: read-only root")
        check(sc.get("allowPrivilegeEscalation") is False, f"{kind}/{container['name']}: no privilege escalation")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{kind}/{container['name']}: drop ALL capabilities")


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_kubernetes(flavour, path):
    objects = [o for o in yaml.safe_load_all(pathlib.Path(path).read_text()) if o]
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    workload_kind = {"postgres": "Deployment", "sqlite": "StatefulSet"}[flavour]
    workloads = by_kind.get(workload_kind, [])
    check(len(workloads) == 1, f"{flavour}: exactly one {workload_kind}, found {len(workloads)}")
    if not workloads:
        return
    server = workloads[0]
    labels = server["spec"]["template"]["metadata"]["labels"]
    check(selects(server["spec"]["selector"]["matchLabels"], labels), f"{workload_kind}: its selector must match its pods")
    services = by_kind.get("Service", [])
    check(any(selects(s["spec"].get("selector"), labels) for s in services), "the Service must select the server pods")
    check_hardened(workload_kind, pod_spec(server))
    for container in pod_spec(server)["containers"]:
        check_server_container(workload_kind, container)
    configmaps = {c["metadata"]["name"] for c in by_kind.get("ConfigMap", [])}
    for volume in pod_spec(server).get("volumes", []):
        if "configMap" in volume:
            check(volume["configMap"]["name"] in configmaps, f"volume {volume['name']}: no ConfigMap {volume['configMap']['name']}")
    if flavour == "postgres":
        jobs = by_kind.get("Job", [])
        check(any(c.get("args") == ["migrate"] for j in jobs for c in pod_spec(j)["containers"]), "a Job must run `tessera migrate`")
        for job in jobs:
            check_hardened("Job", pod_spec(job))
        pdbs = by_kind.get("PodDisruptionBudget", [])
        check(any(selects(p["spec"]["selector"]["matchLabels"], labels) for p in pdbs), "a PodDisruptionBudget must cover the server pods")
        hpas = by_kind.get("HorizontalPodAutoscaler", [])
        check(
            any(
                h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": server["metadata"]["name"]}
                and any(m.get("resource", {}).get("name") == "cpu" for m in h["spec"]["metrics"])
                for h in hpas
            ),
            "a HorizontalPodAutoscaler must scale the Deployment on CPU",
        )
        strategy = server["spec"].get("strategy", {}).get("rollingUpdate", {})
        check(strategy.get("maxUnavailable") == 0, "rolling upgrades keep every node until its successor is ready")
        check("TESSERA_DATABASE_URL" in env_of(pod_spec(server)["containers"][0]), "the Deployment needs TESSERA_DATABASE_URL")
    else:
        check(server["spec"].get("replicas") == 1, "the SQLite StatefulSet has exactly one replica")
        check("volumeClaimTemplates" in server["spec"], "the SQLite store needs a persistent volume")
        for kind in ("Deployment", "HorizontalPodAutoscaler", "Job"):
            check(kind not in by_kind, f"the SQLite flavour must not have a {kind}")


def check_compose(path):
    compose = yaml.safe_load(pathlib.Path(path).read_text())
    services = compose["services"]
    nodes = ["tessera-1", "tessera-2"]
    for name in ["postgres", "migrate", *nodes, "lb"]:
        check(name in services, f"compose: no service {name}")
    if problems:
        return
    check(services["migrate"]["command"] == ["migrate"], "compose: migrate runs `tessera migrate`")
    shared = ["TESSERA_DATABASE_URL", "TESSERA_DATABASE_SCHEMA", "TESSERA_MASTER_KEY", "TESSERA_PUBLIC_URL", "TESSERA_ISSUER"]
    first = services[nodes[0]]["environment"]
    for node in nodes:
        env = services[node]["environment"]
        check(services[node]["command"] == ["serve"], f"compose: {node} runs serve")
        for key in shared:
            check(env.get(key) == first.get(key) and env.get(key), f"compose: {node} must share {key}")
        check(
            services[node]["depends_on"]["migrate"]["condition"] == "service_completed_successfully",
            f"compose: {node} starts after the migration",
        )
        check(services[node].get("read_only") is True, f"compose: {node} has a read-only root")
    check("8080:8080" in services["lb"]["ports"], "compose: the balancer publishes 8080")
    haproxy = (pathlib.Path(path).parent / "haproxy.cfg").read_text()
    check("option httpchk GET /readyz" in haproxy, "haproxy: health check on /readyz")
    for node in nodes:
        check(f"server {node} {node}:8080" in haproxy, f"haproxy: no server {node}")


def main():
    flavour, path = sys.argv[1], sys.argv[2]
    if flavour == "compose":
        check_compose(path)
    else:
        check_kubernetes(flavour, path)
    for problem in problems:
        print(f"deploy: {flavour}: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"deploy: {flavour}: objects fit together")


if __name__ == "__main__":
    main()
