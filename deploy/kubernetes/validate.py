#!/usr/bin/env python3
"""Validates deploy/kubernetes offline.

* Built-in kinds (Deployment, Service, Job, ...) against the Kubernetes OpenAPI schemas that
  the `kubernetes-validate` package (PyPI) bundles, strictly: unknown fields fail.
* KEDA ScaledObjects (a CRD whose schema no registry package ships) structurally: the fields
  the nats-jetstream trigger needs, and the streams and durable consumers the workers create.
* Cross-references: every kustomization resource exists, every ConfigMap/Secret key a pod reads
  is defined (the example Secret stands for the real one), every ScaledObject targets a
  Deployment, probes hit /health/live and /health/ready, pods run as non-root with limits.
* Exposure: every pod of the service is selected by a NetworkPolicy restricting both ingress and
  egress; the api's metrics port (METRICS_ADDR) is the one Prometheus is told to scrape, is not
  in its Service and is reachable from the monitoring namespace only; its public port only from
  the ingress controller, whose pod network TRUSTED_PROXIES trusts; NATS's client port only from
  the service's pods and namespaces labelled as NATS clients, its monitoring port only from KEDA
  and monitoring; each process's NATS inbox prefix is its user's (deploy/nats/auth.conf).
* Defaults that match the code: the header read bound outlasts the ingress's idle upstream
  connections; the api and workers do not migrate (MIGRATE_ON_START=false) and never see the
  schema owner's URL, which only the migration Job reads; the example database URLs verify the
  server's certificate (sslmode=verify-full) and name two different roles.

Usage: validate.py [KUBERNETES_VERSION]   (exit status 1 and one line per problem on failure)
"""

import ipaddress
import pathlib
import sys

import kubernetes_validate
import yaml

HERE = pathlib.Path(__file__).resolve().parent
K8S_VERSION = sys.argv[1] if len(sys.argv) > 1 else "1.30.0"

# What the workers provision (common/src/nats.rs, workers/src/kinds.rs).
WORKER_CONSUMERS = {
    "worker-inventory": {("ORDERS_CMD", "inventory-place"), ("INVENTORY_CMD", "inventory-commands")},
    "worker-orders": {
        ("ORDERS_CMD", "orders-transitions"),
        ("ORDERS_CMD", "orders-fulfilments"),
        ("ORDERS_CMD", "orders-deliveries"),
        ("ORDERS_CMD", "orders-refunds"),
        ("ORDERS_CMD", "orders-after-sale"),
        ("EVENTS", "orders-payment-events"),
    },
    "worker-webhooks": {("EVENTS", "webhooks-events"), ("WEBHOOKS", "webhooks-deliver")},
}
# The ingress the manifests assume (networkpolicies.yaml, config.yaml's TRUSTED_PROXIES).
INGRESS_NAMESPACE = "ingress-nginx"
# How long ingress-nginx keeps an idle upstream connection (its upstream-keepalive-timeout).
INGRESS_UPSTREAM_KEEPALIVE_SECS = 60
# Who may reach NATS's monitoring port: KEDA's operator and Prometheus.
NATS_MONITORING_NAMESPACES = {"keda", "monitoring"}
NATS_CLIENT_NAMESPACE_LABEL = "order-service/nats-client"
NATS_TRIGGER_KEYS = {"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"}

problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def check_scaled_object(where, doc, deployments):
    if doc.get("apiVersion") != "keda.sh/v1alpha1":
        problem(where, f"apiVersion {doc.get('apiVersion')!r}, expected keda.sh/v1alpha1")
    spec = doc.get("spec") or {}
    known = {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval",
             "cooldownPeriod", "idleReplicaCount", "fallback", "advanced", "triggers",
             "initialCooldownPeriod"}
    for key in set(spec) - known:
        problem(where, f"unknown field spec.{key}")
    target = (spec.get("scaleTargetRef") or {}).get("name")
    if target not in deployments:
        problem(where, f"scaleTargetRef.name {target!r} is no Deployment")
    lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi):
        problem(where, f"replica bounds {lo!r}..{hi!r}")
    if target == "worker-orders" and lo < 1:
        problem(where, "the order worker runs the expiry sweeper: minReplicaCount must be >= 1")
    seen = set()
    for i, trigger in enumerate(spec.get("triggers") or []):
        if trigger.get("type") != "nats-jetstream":
            problem(where, f"trigger {i} type {trigger.get('type')!r}")
            continue
        meta = trigger.get("metadata") or {}
        missing = NATS_TRIGGER_KEYS - set(meta)
        if missing:
            problem(where, f"trigger {i} lacks {sorted(missing)}")
        if any(not isinstance(v, str) for v in meta.values()):
            problem(where, f"trigger {i}: metadata values must be strings")
        try:
            if int(meta.get("lagThreshold", "x")) < 1:
                problem(where, f"trigger {i}: lagThreshold must be positive")
        except ValueError:
            problem(where, f"trigger {i}: lagThreshold is not an integer")
        if not str(meta.get("natsServerMonitoringEndpoint", "")).endswith(":8222"):
            problem(where, f"trigger {i}: the monitoring endpoint is port 8222")
        seen.add((meta.get("stream"), meta.get("consumer")))
    expected = WORKER_CONSUMERS.get(target)
    if expected is not None and seen != expected:
        problem(where, f"triggers cover {sorted(seen)}, the worker consumes {sorted(expected)}")


def check_pod(where, pod, config_keys, secret_keys, is_job=False):
    ctx = pod.get("securityContext") or {}
    if not ctx.get("runAsNonRoot"):
        problem(where, "pod securityContext.runAsNonRoot is not true")
    for c in pod.get("containers") or []:
        name = f"{where} container {c.get('name')}"
        limits = (c.get("resources") or {}).get("limits") or {}
        requests = (c.get("resources") or {}).get("requests") or {}
        if "memory" not in limits or "cpu" not in requests:
            problem(name, "needs a memory limit and a cpu request")
        if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False:
            problem(name, "allowPrivilegeEscalation must be false")
        for src in c.get("envFrom") or []:
            ref = src.get("configMapRef") or src.get("secretRef") or {}
            known = config_keys if "configMapRef" in src else secret_keys
            if ref.get("name") not in known:
                problem(name, f"envFrom names unknown {ref.get('name')!r}")
        for env in c.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref and ref.get("key") not in secret_keys.get(ref.get("name"), set()):
                problem(name, f"{env['name']} reads missing key {ref.get('key')!r} of {ref.get('name')!r}")
        if not is_job and (c.get("image") == "order-service"):
            live = ((c.get("livenessProbe") or {}).get("httpGet") or {}).get("path")
            ready = ((c.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
            if (live, ready) != ("/health/live", "/health/ready"):
                problem(name, f"probes {live!r}, {ready!r}")


def selects(selector, labels):
    """Whether a label selector (matchLabels, matchExpressions with In) selects `labels`."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        if expr.get("operator") != "In" or labels.get(expr.get("key")) not in expr.get("values", []):
            return False
    return True


def check_exposure(docs, config_keys_values):
    policies = [d for _, d in docs if d.get("kind") == "NetworkPolicy"]
    workloads = [(f, d) for f, d in docs if d.get("kind") in ("Deployment", "Job")]
    for file, doc in workloads:
        where = f"{file} {doc['kind']}/{doc['metadata']['name']}"
        labels = doc["spec"]["template"]["metadata"].get("labels") or {}
        covering = [p for p in policies if selects(p["spec"].get("podSelector") or {}, labels)]
        kinds = {t for p in covering for t in p["spec"].get("policyTypes") or []}
        if not {"Ingress", "Egress"} <= kinds:
            problem(where, f"no NetworkPolicy restricts both its ingress and egress (has {sorted(kinds)})")
        for c in doc["spec"]["template"]["spec"].get("containers") or []:
            env = {e["name"]: e.get("value") for e in c.get("env") or []}
            user = env.get("NATS_USER")
            if user and env.get("NATS_INBOX_PREFIX") != f"_INBOX_{user}":
                problem(where, f"NATS user {user} needs NATS_INBOX_PREFIX=_INBOX_{user} (auth.conf)")
    if not any(selects(p["spec"].get("podSelector") or {}, {"app.kubernetes.io/name": "postgres"})
               for p in policies):
        problem("manifests", "no NetworkPolicy for PostgreSQL")

    api = next((d for _, d in docs if d.get("kind") == "Deployment" and d["metadata"]["name"] == "api"), None)
    if api is None:
        return
    metrics_addr = config_keys_values.get("METRICS_ADDR", "")
    port = metrics_addr.rpartition(":")[2]
    ports = {p.get("name"): p.get("containerPort") for c in api["spec"]["template"]["spec"]["containers"]
             for p in c.get("ports") or []}
    if str(ports.get("metrics")) != port:
        problem("api.yaml", f"container port `metrics` {ports.get('metrics')!r} is not METRICS_ADDR's {port!r}")
    annotations = api["spec"]["template"]["metadata"].get("annotations") or {}
    if annotations.get("prometheus.io/port") != port:
        problem("api.yaml", f"Prometheus scrapes port {annotations.get('prometheus.io/port')!r}, metrics are on {port!r}")
    for _, svc in docs:
        if svc.get("kind") == "Service" and svc["metadata"]["name"] == "api":
            for p in svc["spec"].get("ports") or []:
                if str(p.get("targetPort")) in ("metrics", port) or str(p.get("port")) == port:
                    problem("api.yaml", "the api Service exposes the metrics port")
    labels = api["spec"]["template"]["metadata"]["labels"]
    for p in policies:
        if not selects(p["spec"].get("podSelector") or {}, labels):
            continue
        for rule in p["spec"].get("ingress") or []:
            opens = not rule.get("ports") or any(str(r.get("port")) == port for r in rule["ports"])
            if opens and not all("namespaceSelector" in f for f in rule.get("from") or [{}]):
                problem(f"NetworkPolicy/{p['metadata']['name']}", "lets more than the monitoring namespace reach the api's metrics")


def namespaces_of(rule):
    """The namespace names a rule's `from` entries are restricted to (None: one is not)."""
    names = set()
    for peer in rule.get("from") or [{}]:
        name = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get(
            "kubernetes.io/metadata.name")
        if name is None:
            return None
        names.add(name)
    return names


def opens(rule, port):
    return not rule.get("ports") or any(str(r.get("port")) == str(port) for r in rule["ports"])


def check_ingress_and_nats(docs, config_values):
    policies = [d for _, d in docs if d.get("kind") == "NetworkPolicy"]
    public = config_values.get("HTTP_ADDR", "").rpartition(":")[2]
    proxies = [p.strip() for p in config_values.get("TRUSTED_PROXIES", "").split(",") if p.strip()]
    if not proxies:
        problem("config.yaml", "TRUSTED_PROXIES is empty: behind the ingress every client would be one address")
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            problem("config.yaml", f"TRUSTED_PROXIES entry {proxy!r} is no address or CIDR")
    for p in policies:
        name = f"NetworkPolicy/{p['metadata']['name']}"
        selector = p["spec"].get("podSelector") or {}
        for rule in p["spec"].get("ingress") or []:
            if selects(selector, {"app.kubernetes.io/name": "api"}) and opens(rule, public):
                if namespaces_of(rule) != {INGRESS_NAMESPACE}:
                    problem(name, f"the api's public port is open beyond the {INGRESS_NAMESPACE} controller that TRUSTED_PROXIES trusts")
            if not selects(selector, {"app.kubernetes.io/name": "nats"}):
                continue
            if not rule.get("from"):
                problem(name, "a NATS port is open to every pod")
            if opens(rule, 8222) and not (namespaces_of(rule) or {"?"}) <= NATS_MONITORING_NAMESPACES:
                problem(name, f"NATS monitoring is open beyond {sorted(NATS_MONITORING_NAMESPACES)}")
            if opens(rule, 4222):
                for peer in rule.get("from") or []:
                    labels = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
                    if "namespaceSelector" in peer and labels.get(NATS_CLIENT_NAMESPACE_LABEL) != "true":
                        problem(name, f"NATS clients from namespaces not labelled {NATS_CLIENT_NAMESPACE_LABEL}")
                    if "podSelector" in peer and "namespaceSelector" not in peer and not any(
                            selects(peer["podSelector"], {"app.kubernetes.io/name": n})
                            for n in ("api", "worker-orders", "worker-inventory")):
                        problem(name, "NATS's client port is open to pods that are not the order service's")
    if not any(selects(p["spec"].get("podSelector") or {}, {"app.kubernetes.io/name": "nats"})
               for p in policies):
        problem("nats.yaml", "no NetworkPolicy for NATS")
    timeout = config_values.get("HTTP_HEADER_READ_TIMEOUT_SECS", "10")
    if not timeout.isdigit() or int(timeout) <= INGRESS_UPSTREAM_KEEPALIVE_SECS:
        problem("config.yaml", f"HTTP_HEADER_READ_TIMEOUT_SECS {timeout!r} closes idle connections the ingress still keeps ({INGRESS_UPSTREAM_KEEPALIVE_SECS} s)")


def check_database_roles(docs, config_values, secret_values):
    if config_values.get("MIGRATE_ON_START") != "false":
        problem("config.yaml", "MIGRATE_ON_START must be false: the runtime role cannot change the schema")
    for file, doc in docs:
        if doc.get("kind") not in ("Deployment", "Job"):
            continue
        names = {e["name"] for c in doc["spec"]["template"]["spec"].get("containers") or []
                 for e in c.get("env") or []}
        migrates = doc["kind"] == "Job"
        if migrates and "DATABASE_MIGRATE_URL" not in names:
            problem(file, "the migration Job must log in as the schema owner (DATABASE_MIGRATE_URL)")
        if not migrates and "DATABASE_MIGRATE_URL" in names:
            problem(file, f"{doc['metadata']['name']} must not hold the schema owner's URL")
    users = set()
    for key in ("DATABASE_URL", "DATABASE_MIGRATE_URL"):
        url = secret_values.get(key, "")
        if "sslmode=verify-full" not in url:
            problem("secret.example.yaml", f"{key} must verify the server (sslmode=verify-full)")
        users.add(url.partition("://")[2].partition(":")[0])
    if len(users) != 2:
        problem("secret.example.yaml", "DATABASE_URL and DATABASE_MIGRATE_URL must name two roles")


def main():
    kustomization = yaml.safe_load((HERE / "kustomization.yaml").read_text())
    files = []
    for resource in kustomization.get("resources", []):
        path = HERE / resource
        if not path.is_file():
            problem("kustomization.yaml", f"resource {resource} does not exist")
        else:
            files.append(path)
    listed = {p.name for p in files} | {"kustomization.yaml", "secret.example.yaml"}
    for path in HERE.glob("*.yaml"):
        if path.name not in listed:
            problem(path.name, "not listed in kustomization.yaml")

    docs = [(p.name, d) for p in files for d in load(p)]
    examples = [("secret.example.yaml", d) for d in load(HERE / "secret.example.yaml")]
    config_keys, secret_keys, deployments, config_values, secret_values = {}, {}, set(), {}, {}
    for _, d in docs + examples:
        name = d.get("metadata", {}).get("name")
        if d.get("kind") == "ConfigMap":
            config_keys[name] = set(d.get("data") or {})
            config_values.update(d.get("data") or {})
        elif d.get("kind") == "Secret":
            secret_keys[name] = set(d.get("stringData") or {}) | set(d.get("data") or {})
            secret_values.update(d.get("stringData") or {})
        elif d.get("kind") == "Deployment":
            deployments.add(name)
    # Created from deploy/nats/ by hand (docs/operations.md, "Deploying on Kubernetes").
    config_keys.setdefault("nats-config", {"cluster.conf", "auth.conf"})

    for file, doc in docs + examples:
        where = f"{file} {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if doc.get("kind") == "ScaledObject":
            check_scaled_object(where, doc, deployments)
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = "/".join(str(p) for p in e.path)
            problem(where, f"{e.message} at {path}")
        except kubernetes_validate.SchemaNotFoundError:
            problem(where, f"no schema for {doc.get('apiVersion')} {doc.get('kind')}")
        if doc.get("metadata", {}).get("namespace") not in (None, "orders") and doc.get("kind") != "Namespace":
            problem(where, "outside the orders namespace")
        kind = doc.get("kind")
        if kind in ("Deployment", "StatefulSet", "Job"):
            pod = doc["spec"]["template"]["spec"]
            check_pod(where, pod, config_keys, secret_keys, is_job=kind == "Job")
            if kind == "Deployment" and pod.get("terminationGracePeriodSeconds", 30) < 40:
                problem(where, "terminationGracePeriodSeconds too short to drain")
    scaled = {d["spec"]["scaleTargetRef"]["name"] for _, d in docs if d.get("kind") == "ScaledObject"}
    for worker in WORKER_CONSUMERS:
        if worker not in deployments:
            problem("manifests", f"no Deployment {worker}")
        if worker not in scaled:
            problem("manifests", f"no ScaledObject for {worker}")
    if not any(d.get("kind") == "PodDisruptionBudget" and d["metadata"]["name"] == "api" for _, d in docs):
        problem("manifests", "no PodDisruptionBudget for the api")
    if not any(d.get("kind") == "Job" and d["spec"]["template"]["spec"]["containers"][0].get("args") == ["api", "migrate"] for _, d in docs):
        problem("manifests", "no migration Job running `api migrate`")

    check_exposure(docs, config_values)
    check_ingress_and_nats(docs, config_values)
    check_database_roles(docs, config_values, secret_values)

    for p in problems:
        print(p)
    print(f"{len(docs) + len(examples)} resources checked against Kubernetes {K8S_VERSION}: "
          f"{'FAILED' if problems else 'valid'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
