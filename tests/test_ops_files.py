"""Static checks of the deployment files: docker-compose.yml, Dockerfile, Prometheus, Grafana.

No Docker needed. The promtool checks run when ``promtool`` is on PATH (CI installs it with
``apt-get install -y prometheus``) and are skipped otherwise.
"""

from __future__ import annotations

import glob
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

import schemas.metrics
from povhub.settings import WorkerSettings, load_settings, variables

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROM_DIR = ROOT / "ops" / "prometheus"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
RULES = PROM_DIR / "rules" / "povhub.rules.yml"
RULE_TESTS = PROM_DIR / "tests" / "povhub.rules.test.yml"
GRAFANA = ROOT / "ops" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "povhub.json"
DATASOURCE = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDER = GRAFANA / "provisioning" / "dashboards" / "povhub.yml"

WORKER = "povhub-worker"
HUB_IMAGE_PREFIX = "povhub:"
# Prometheus' own series that the rules and dashboards may use besides the catalogue.
BUILTIN_METRICS = {"up"}


# ------------------------------------------------------------------------------------ helpers

def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def hub_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run the povhub image (built from the Dockerfile)."""
    return {name: svc for name, svc in compose["services"].items()
            if "build" in svc or str(svc.get("image", "")).startswith(HUB_IMAGE_PREFIX)}


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} with nothing set: defaults, else a
    placeholder long enough for the secret's minimum length."""

    def sub(m: re.Match[str]) -> str:
        op, arg = m.group(2), m.group(3)
        if op in (":-", "-"):
            return arg
        return "Placeholder0123456789"

    return _INTERPOLATION.sub(sub, value).replace("$$", "$")


def catalogue_metric_names() -> set[str]:
    """Every series name the catalogue exports, as PromQL sees it."""
    collectors = [v for v in vars(schemas.metrics).values() if isinstance(v, MetricWrapperBase)]
    assert collectors, "schemas/metrics.py defines no metrics?"
    names: set[str] = set()
    for collector in collectors:
        for family in collector.describe():
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
            elif family.type == "summary":
                names.update((family.name, family.name + "_sum", family.name + "_count"))
            else:
                names.add(family.name)
    return names


_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                 "unless", "offset", "bool", "inf", "nan"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers that are not functions, keywords,
    label names (inside {...} or by/on/... (...)), strings, durations or numbers."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in _PROMQL_WORDS:
            continue
        names.add(word)
    return names


def rule_list() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in rule_list() if "alert" in rule]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))

    def walk(panels: list[dict[str, Any]]):
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    return [t["expr"] for p in walk(dashboard["panels"]) for t in p.get("targets", []) if t.get("expr")]


def test_promql_metric_names_parser() -> None:
    expr = ('histogram_quantile(0.95, sum by (table, le) (rate(povhub_sink_insert_seconds_bucket'
            '{table=~"a|b", job="x"}[5m] offset 10m))) > 1e3 and on (table) up == bool 0'
            ' unless time() - max by (table) (povhub_sink_last_success_timestamp_seconds) < 600')
    assert promql_metric_names(expr) == {
        "povhub_sink_insert_seconds_bucket", "up", "povhub_sink_last_success_timestamp_seconds"}
    assert promql_metric_names('sum(rate(x_total[$__rate_interval]))') == {"x_total"}


# ------------------------------------------------------------------------------ compose files

def _bind_sources(svc: dict[str, Any]) -> list[str]:
    sources = []
    for volume in svc.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                sources.append(volume["source"])
        else:
            source = str(volume).split(":", 1)[0]
            if source.startswith((".", "/", "~")):
                sources.append(source)
    return sources


def test_compose_builds_and_mounts_only_files_that_exist(compose: dict[str, Any]) -> None:
    missing = []
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            for path in (ROOT / context, ROOT / context / dockerfile):
                if not path.exists():
                    missing.append(f"{name}: build {path.relative_to(ROOT)}")
        for source in _bind_sources(svc):
            if not (ROOT / source).exists():
                missing.append(f"{name}: mount {source}")
        env_files = svc.get("env_file", [])
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = env_file if isinstance(env_file, str) else env_file["path"]
            if isinstance(env_file, dict) and env_file.get("required") is False:
                continue
            if not (ROOT / path).exists():
                missing.append(f"{name}: env_file {path}")
    assert not missing, "docker-compose.yml refers to files that are not in the repo: " + ", ".join(missing)


def test_dockerfile_copies_only_files_that_exist() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r'^ENTRYPOINT \["povhub"\]', text, re.M)
    assert re.search(r"^USER (?!root\b|0\b)\S+", text, re.M), "the image must run as a non-root user"
    missing = []
    for line in re.findall(r"^(?:COPY|ADD)\s+(.+)$", text, re.M):
        args = line.split()
        if any(a.startswith("--from") for a in args):
            continue
        for source in [a for a in args if not a.startswith("--")][:-1]:
            if any(c in source for c in "*?["):
                continue  # a glob may match nothing on purpose (optional files)
            if not (ROOT / source).exists():
                missing.append(source)
    assert not missing, f"Dockerfile copies files that are not in the repo: {missing}"
    # everything setuptools packages must be copied into the build stage
    for package in ("povhub", "schemas", "connectors", "streams", "sinks"):
        assert re.search(rf"^COPY\s+{package}/?\s", text, re.M), f"Dockerfile does not copy {package}/"


def test_hub_services_use_only_variables_settings_reads(compose: dict[str, Any]) -> None:
    known = variables()
    hubs = hub_services(compose)
    assert {"povhub-topics", "povhub-migrate", WORKER} <= set(hubs)
    unknown = {f"{name}: {var}" for name, svc in hubs.items() for var in environment(svc) if var not in known}
    assert not unknown, f"environment variables that povhub.settings.Settings does not read: {sorted(unknown)}"
    for name, svc in hubs.items():
        assert "env_file" not in svc, f"{name}: env_file would pass variables Settings does not read"


def test_hub_service_environment_passes_settings_validation(
        compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, svc in hub_services(compose).items():
        for var in variables():
            monkeypatch.delenv(var, raising=False)
        for var, value in environment(svc).items():
            monkeypatch.setenv(var, interpolate(value))
        settings = load_settings(env_file=None)
        assert settings.kafka.bootstrap_servers, f"{name}: KAFKA_BOOTSTRAP_SERVERS not set"
        assert settings.clickhouse.url and settings.clickhouse.url.startswith("http://"), \
            f"{name}: CLICKHOUSE_URL must point at the clickhouse service"


def test_hub_services_run_the_povhub_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["povhub-topics"]["command"] == ["topics"]
    assert services["povhub-migrate"]["command"] == ["migrate"]
    assert services[WORKER]["command"] == ["worker"]
    worker_deps = services[WORKER]["depends_on"]
    assert worker_deps["povhub-topics"]["condition"] == "service_completed_successfully"
    assert worker_deps["povhub-migrate"]["condition"] == "service_completed_successfully"
    for dep in ("kafka", "clickhouse"):
        assert worker_deps[dep]["condition"] == "service_healthy"
        assert "healthcheck" in services[dep], f"{dep} needs a healthcheck for service_healthy"


def test_dockerfile_copies_every_package_the_wheel_is_built_from() -> None:
    # pip builds the image's wheel from what was copied: a package pyproject.toml lists but the
    # Dockerfile leaves out builds without error and fails at the first import (pipeline/ did)
    include = re.search(r'include = \[([^\]]*)\]', (ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert include is not None
    packages = {name.strip().strip('"').rstrip("*") for name in include.group(1).split(",")}
    copied = {m.rstrip("/") for m in re.findall(r"^COPY\s+(\S+)/\s", DOCKERFILE.read_text(encoding="utf-8"), re.M)}
    assert packages <= copied, f"the Dockerfile does not copy {sorted(packages - copied)}"


def test_kafka_image_matches_ops_kafka_version(compose: dict[str, Any]) -> None:
    pom = ROOT / "ops" / "kafka" / "pom.xml"
    if not pom.exists():
        pytest.skip("ops/kafka/pom.xml not present")
    version = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text(encoding="utf-8"))
    assert version, "no <kafka.version> in ops/kafka/pom.xml"
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{version.group(1)}"


def test_worker_port_matches_prometheus_scrape_target(compose: dict[str, Any]) -> None:
    worker = compose["services"][WORKER]
    env = {k: interpolate(v) for k, v in environment(worker).items()}
    port = int(env.get("POVHUB_WEB_PORT", WorkerSettings.model_fields["web_port"].default))
    assert env.get("POVHUB_WEB_HOST") == "0.0.0.0", "the worker must listen beyond its own loopback"

    config = load_yaml(PROM_CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert WORKER in jobs, f"no scrape job {WORKER!r} in {PROM_CONFIG.relative_to(ROOT)}"
    job = jobs[WORKER]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"{WORKER}:{port}"]

    published = [str(p).rsplit(":", 1)[-1] for p in worker.get("ports", [])]
    assert published == [str(port)], "the worker's published container port differs from POVHUB_WEB_PORT"
    assert any(f":{port}/" in part for part in worker["healthcheck"]["test"]), "healthcheck probes another port"

    rules_text = RULES.read_text(encoding="utf-8")
    for job_name in re.findall(r'up\{[^}]*job="([^"]+)"', rules_text):
        assert job_name in jobs, f"rules select up{{job={job_name!r}}} but no such scrape job exists"


def test_prometheus_mounts_config_and_rules(compose: dict[str, Any]) -> None:
    mounts = {str(v).split(":")[0]: str(v).split(":")[1] for v in compose["services"]["prometheus"]["volumes"]}
    assert mounts.get("./ops/prometheus/prometheus.yml") == "/etc/prometheus/prometheus.yml"
    rules_target = mounts.get("./ops/prometheus/rules")
    assert rules_target, "the rules directory is not mounted into Prometheus"
    config_dir = Path("/etc/prometheus")
    for pattern in load_yaml(PROM_CONFIG)["rule_files"]:
        assert str((config_dir / pattern).parent) == rules_target, f"rule_files {pattern!r} is not the mounted rules dir"
        assert glob.glob(str(PROM_DIR / pattern)), f"rule_files {pattern!r} matches nothing in the repo"


# -------------------------------------------------------------------------- Prometheus rules

def test_rules_use_only_catalogue_metrics() -> None:
    allowed = catalogue_metric_names() | BUILTIN_METRICS
    used: set[str] = set()
    for rule in rule_list():
        used |= promql_metric_names(rule["expr"])
    assert used, "no metric names found in the rules?"
    assert used <= allowed, f"rules use metrics not in schemas/metrics.py: {sorted(used - allowed)}"


def test_rule_unit_tests_use_only_catalogue_metrics() -> None:
    allowed = catalogue_metric_names() | BUILTIN_METRICS
    used = {re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", s["series"]).group(0)
            for test in load_yaml(RULE_TESTS)["tests"] for s in test.get("input_series", [])}
    assert used <= allowed, f"rule tests feed series not in schemas/metrics.py: {sorted(used - allowed)}"


def test_every_alert_has_severity_summary_description_and_a_unit_test() -> None:
    alerts = alert_rules()
    assert alerts
    tested = {case["alertname"] for test in load_yaml(RULE_TESTS)["tests"] for case in test.get("alert_rule_test", [])}
    firing = {case["alertname"] for test in load_yaml(RULE_TESTS)["tests"]
              for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    silent = {case["alertname"] for test in load_yaml(RULE_TESTS)["tests"]
              for case in test.get("alert_rule_test", []) if not case.get("exp_alerts")}
    for rule in alerts:
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in ("critical", "warning", "info"), name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), name
        assert name in tested, f"{name} has no promtool unit test"
        assert name in firing, f"{name} has no unit test where it fires"
        assert name in silent, f"{name} has no unit test where it does not fire"


def test_catalogue_metrics_have_an_alert_or_a_panel() -> None:
    """Not a contract, a reminder: a new metric should be watched somewhere."""
    used: set[str] = set()
    for expr in [r["expr"] for r in rule_list()] + dashboard_exprs():
        used |= promql_metric_names(expr)
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in used}
    unwatched = {n for n in catalogue_metric_names() if re.sub(r"_(total|bucket|sum|count)$", "", n) not in families}
    assert not unwatched, f"catalogue metrics neither alerted on nor on the dashboard: {sorted(unwatched)}"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not on PATH (Debian/Ubuntu: apt-get install -y prometheus; CI installs it)")
    return path


@pytest.mark.parametrize("args", [
    ["check", "rules", str(RULES)],
    ["test", "rules", str(RULE_TESTS)],
    ["check", "config", str(PROM_CONFIG)],
], ids=["check-rules", "test-rules", "check-config"])
def test_promtool(args: list[str]) -> None:
    result = subprocess.run([_promtool(), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


# ---------------------------------------------------------------------------------- Grafana

def test_dashboard_uses_only_catalogue_metrics() -> None:
    exprs = dashboard_exprs()
    assert exprs, "the dashboard has no queries?"
    allowed = catalogue_metric_names() | BUILTIN_METRICS
    used: set[str] = set()
    for expr in exprs:
        used |= promql_metric_names(expr)
    assert used <= allowed, f"dashboard uses metrics not in schemas/metrics.py: {sorted(used - allowed)}"


def test_dashboard_refers_to_the_provisioned_datasource() -> None:
    datasources = load_yaml(DATASOURCE)["datasources"]
    uids = {ds["uid"] for ds in datasources if ds["type"] == "prometheus"}
    assert uids
    text = DASHBOARD.read_text(encoding="utf-8")
    refs = {m for m in re.findall(r'"uid":\s*"([^"]+)"', text)} - {json.loads(text)["uid"]}
    assert refs and refs <= uids, f"dashboard datasource uids {refs} not provisioned ({uids})"


def test_grafana_provisioning_paths_match_compose_mounts(compose: dict[str, Any]) -> None:
    mounts = {str(v).split(":")[0]: str(v).split(":")[1] for v in compose["services"]["grafana"]["volumes"]}
    assert mounts.get("./ops/grafana/provisioning") == "/etc/grafana/provisioning"
    provider_paths = {p["options"]["path"] for p in load_yaml(DASHBOARD_PROVIDER)["providers"]}
    assert provider_paths == {mounts.get("./ops/grafana/dashboards")}
    datasource_urls = {ds["url"] for ds in load_yaml(DATASOURCE)["datasources"]}
    assert datasource_urls == {"http://prometheus:9090"} and "prometheus" in compose["services"]
