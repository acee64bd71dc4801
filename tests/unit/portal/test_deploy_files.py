"""The production deployment files (compose.yaml, Dockerfiles, deploy/) say what docs/deploy.md says.

No container runs here: these read the files as Docker and Compose would and check the properties the
deployment depends on, and run the helper scripts in deploy/ against real inputs.
"""

import importlib.util
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from portal import audit
from transparency.digests import all_digests, publish_audit_digest

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
PORTAL_SERVICES = ("web", "worker", "migrate")
SETTINGS_SOURCE = (ROOT / "portal" / "settings.py").read_text(encoding="utf-8")
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
# Names that look like credentials; in the deployment each must come from a file (NAME_FILE). URLs
# count (DATABASE_URL and REDIS_URL carry passwords) except the public addresses below.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|_KEY_ID|_URL$")
PUBLIC_URLS = {"AWS_S3_ENDPOINT_URL", "PORTAL_BASE_URL", "PORTAL_FEDERATION_URL"}
# Images are pinned to a release: a version with its patch number (PostgreSQL's MAJOR.MINOR is one), or
# MinIO's RELEASE stamp; a digest may follow.
PINNED_TAG = re.compile(r":(\d+\.\d+\.\d+[\w.-]*|RELEASE\.\d{4}-\d\d-\d\dT[\w-]+Z)(@sha256:[0-9a-f]{64})?$")
PINNED_POSTGRES = re.compile(r"^postgres:\d+\.\d+(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")


def _pinned(image):
    return bool(PINNED_TAG.search(image) or PINNED_POSTGRES.match(image))


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _settings_reads(name):
    """Does portal/settings.py read NAME from the environment (directly or as NAME_FILE)?"""
    return re.search(rf"env_[a-z]+\(\s*\"{re.escape(name)}\"", SETTINGS_SOURCE) is not None


def _dockerfile_stages(path):
    """[(FROM image, [instruction lines])] of a Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line.split()[1], []))
        elif stages:
            stages[-1][1].append(line)
    return stages


def _compose_variables():
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "compose.yaml").read_text(encoding="utf-8")))


def _env_example_variables():
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    return {m.group(1) for line in lines if (m := re.match(r"^#?\s?([A-Z][A-Z0-9_]*)=", line))}


# --- compose.yaml ------------------------------------------------------------------------------------


def test_every_service_of_the_deployment_is_there():
    assert {
        "proxy",
        "web",
        "worker",
        "migrate",
        "postgres",
        "redis",
        "minio",
        "createbucket",
        "agent",
    } <= set(SERVICES)
    assert SERVICES["proxy"]["image"].startswith("caddy:")
    assert SERVICES["postgres"]["image"].startswith("postgres:16.")
    assert SERVICES["redis"]["image"].startswith("redis:7.")
    assert "minio/minio:" in SERVICES["minio"]["image"]
    assert "minio/mc:" in SERVICES["createbucket"]["image"]
    assert SERVICES["agent"]["build"]["dockerfile"] == "agent/Dockerfile"


def test_web_runs_gunicorn_with_the_deployment_config():
    assert SERVICES["web"]["command"] == ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
    assert GUNICORN_CONF.is_file()


def test_worker_runs_qcluster_and_can_be_scaled():
    worker = SERVICES["worker"]
    assert worker["command"] == ["python", "manage.py", "qcluster"]
    # --scale worker=N needs no fixed name and no host port.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["healthcheck"]["test"][-2:] == ["/app/deploy/healthcheck.py", "worker"]


def test_migrations_run_once_before_web_and_worker():
    migrate = SERVICES["migrate"]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--no-input"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert SERVICES[name]["depends_on"]["createbucket"]["condition"] == "service_completed_successfully"
    # No database cache is configured, so there is no cache table to create.
    assert "DatabaseCache" not in SETTINGS_SOURCE
    assert "createcachetable" not in json.dumps(COMPOSE)


def test_state_lives_in_named_volumes_and_data_services_are_checked():
    assert "postgres-data:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]
    assert "pg_isready" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert "minio-data:/data" in SERVICES["minio"]["volumes"]
    assert "redis-data:/data" in SERVICES["redis"]["volumes"]
    assert "--appendonly yes" in " ".join(SERVICES["redis"]["command"])
    assert {"postgres-data", "redis-data", "minio-data", "caddy-data", "agent-work"} <= set(
        COMPOSE["volumes"]
    )


def test_only_the_proxy_is_reachable_from_outside():
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"proxy"}
    assert COMPOSE["networks"]["data"]["internal"] is True
    for name in ("postgres", "redis", "minio", "createbucket", "migrate"):
        assert SERVICES[name]["networks"] == ["data"], name


def test_the_proxy_terminates_tls_in_front_of_gunicorn():
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in SERVICES["proxy"]["volumes"]
    assert "tls {$CADDY_TLS}" in caddyfile
    assert "reverse_proxy web:8000" in caddyfile
    # Uploads up to PORTAL_CRATE_MAX_BYTES (2 GiB) must get through the proxy.
    max_size = re.search(r"max_size (\d+)MB", caddyfile)
    assert max_size and int(max_size.group(1)) * 10**6 > 2 * 1024**3


def test_no_secret_is_written_inline():
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), "credentials in a URL"
    for name, service in SERVICES.items():
        environment = service.get("environment") or {}
        assert isinstance(environment, dict), name
        secrets = set(service.get("secrets", []))
        for key, value in environment.items():
            if key.endswith("_FILE"):
                assert str(value).startswith("/run/secrets/"), (name, key)
                assert str(value).removeprefix("/run/secrets/") in secrets, (name, key)
            else:
                assert not SECRET_NAME.search(key) or key in PUBLIC_URLS, (name, key)
    for name, secret in COMPOSE["secrets"].items():
        assert secret["file"].startswith("./deploy/secrets/"), name
    assert (ROOT / "deploy" / "secrets" / ".gitignore").read_text(encoding="utf-8").splitlines()[1:] == [
        "*",
        "!.gitignore",
    ]


def test_the_agent_gets_its_token_and_config_as_secrets():
    agent = SERVICES["agent"]
    command = agent["command"]
    assert command[command.index("--token-file") + 1] == "/run/secrets/agent_token"
    assert command[command.index("--config") + 1] == "/run/secrets/agent_config"
    assert set(agent["secrets"]) == {"agent_token", "agent_config"}
    assert "agent-work:/var/lib/five-safes-agent" in agent["volumes"]


def test_portal_environment_uses_only_settings_the_portal_reads():
    gunicorn_source = GUNICORN_CONF.read_text(encoding="utf-8")
    for name in PORTAL_SERVICES:
        for key in SERVICES[name]["environment"]:
            setting = key.removesuffix("_FILE")
            assert _settings_reads(setting) or f'"{key}"' in gunicorn_source, (name, key)


def test_env_example_lists_every_variable_and_only_real_ones():
    compose_variables = _compose_variables()
    example = _env_example_variables()
    assert compose_variables <= example, compose_variables - example
    for name in example:
        assert name in compose_variables or _settings_reads(name), name


def test_third_party_images_are_pinned():
    for name, service in SERVICES.items():
        if "build" in service:
            continue
        assert _pinned(service["image"]), (name, service["image"])


# --- Dockerfiles ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["Dockerfile", "agent/Dockerfile"])
def test_images_are_pinned_and_run_unprivileged(path):
    stages = _dockerfile_stages(ROOT / path)
    for image, _ in stages:
        assert PINNED_TAG.search(image), image
    assert not any(_pinned(image) for image in ("python:3.11-slim", "redis:7", "postgres:16", "caddy:latest"))
    final = stages[-1][1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert any(line.startswith("RUN groupadd") and "useradd" in line for line in final)


def test_portal_image_builds_assets_and_static_files_and_serves_with_gunicorn():
    stages = _dockerfile_stages(ROOT / "Dockerfile")
    assets = [lines for image, lines in stages if image.startswith("node:")]
    assert assets and any("npm ci" in line for line in assets[0])
    final = stages[-1][1]
    assert any("pip install -r /tmp/requirements.txt" in line for stage in stages for line in stage[1])
    assert any("collectstatic" in line for line in final)
    # The build-time key is given to one RUN only, never baked into the image's environment.
    assert not any(line.startswith("ENV") and "DJANGO_SECRET_KEY" in line for line in final)
    assert any(line.startswith("HEALTHCHECK") and "healthcheck.py" in line for line in final)
    assert final[-1] == 'CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"]'
    # The build copies nhsuk-frontend to where settings.STATICFILES_DIRS looks for it.
    assert "node_modules/nhsuk-frontend/dist" in " ".join(final)
    assert re.search(r"^gunicorn==\d+\.\d+\.\d+$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)


def test_agent_image_installs_only_the_agent():
    stages = _dockerfile_stages(ROOT / "agent" / "Dockerfile")
    lines = [line for _, stage in stages for line in stage]
    copies = [line for line in lines if line.startswith("COPY ") and "--from=" not in line]
    assert copies == ["COPY agent/requirements.txt agent/requirements-tes.txt /tmp/", "COPY agent ./agent"]
    assert "pip install -r /tmp/requirements.txt" in " ".join(lines)
    assert "pip install --no-deps -r /tmp/requirements-tes.txt" in " ".join(lines)
    assert "cwltool==" in (ROOT / "agent" / "requirements.txt").read_text()
    assert "util-linux" in " ".join(lines)  # unshare, for the sandbox's network isolation
    assert stages[-1][1][-2] == 'ENTRYPOINT ["tini", "--", "python", "-m", "agent"]'


def test_systemd_unit_runs_the_same_agent_command():
    unit = (ROOT / "deploy" / "five-safes-agent.service").read_text(encoding="utf-8")
    exec_start = re.search(r"^ExecStart=(.*?)(?<!\\)$", unit, re.MULTILINE | re.DOTALL).group(1)
    assert "-m agent" in exec_start and "--token-file %d/agent-token" in exec_start
    assert "--config %d/agent.toml" in exec_start
    assert re.search(r"^User=five-safes-agent$", unit, re.MULTILINE)
    assert not re.search(r"^(RestrictNamespaces|PrivateUsers)=", unit, re.MULTILINE)


def test_dockerignore_keeps_local_state_and_secrets_out():
    patterns = set((ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines())
    assert {
        ".git",
        ".venv",
        "node_modules",
        "var",
        "**/.env",
        "deploy/secrets",
        "media",
        "test-artifacts",
    } <= (patterns)


# --- deploy/ scripts ----------------------------------------------------------------------------------


def test_gunicorn_config_reads_the_environment(monkeypatch):
    monkeypatch.delenv("GUNICORN_THREADS", raising=False)
    monkeypatch.setenv("GUNICORN_WORKERS", "5")
    monkeypatch.setenv("GUNICORN_FORWARDED_ALLOW_IPS", "10.0.0.2")
    conf = _load(GUNICORN_CONF)
    assert (conf.worker_class, conf.workers, conf.threads) == ("gthread", 5, 8)
    assert conf.forwarded_allow_ips == "10.0.0.2"
    assert conf.accesslog == "-" and conf.wsgi_app == "portal.wsgi:application"
    assert conf.graceful_timeout >= 60  # uploads and long-polled claims finish on a restart


class _FakePortal(BaseHTTPRequestHandler):
    status = 200
    seen = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).seen.append((self.path, self.headers["Host"], self.headers["X-Forwarded-Proto"]))
        self.send_response(type(self).status)
        self.send_header("Location", "https://elsewhere/")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_portal():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakePortal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakePortal.seen = []
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (301, False), (500, False)])
def test_web_healthcheck_asks_for_healthz_as_the_proxy_would(fake_portal, monkeypatch, status, healthy):
    monkeypatch.setattr(_FakePortal, "status", status)
    monkeypatch.setenv("HEALTHCHECK_PORT", str(fake_portal.server_address[1]))
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", ".example.org,portal.example.org")
    monkeypatch.delenv("DJANGO_ALLOWED_HOSTS_FILE", raising=False)
    healthcheck = _load(ROOT / "deploy" / "healthcheck.py")
    assert healthcheck.main(["healthcheck.py", "web"]) == (0 if healthy else 1)
    assert _FakePortal.seen == [("/healthz", "example.org", "https")]


def test_web_healthcheck_reports_a_dead_server(monkeypatch):
    with ThreadingHTTPServer(("127.0.0.1", 0), _FakePortal) as closed:
        port = closed.server_address[1]
    monkeypatch.setenv("HEALTHCHECK_PORT", str(port))
    assert _load(ROOT / "deploy" / "healthcheck.py").main(["healthcheck.py", "web"]) == 1


@pytest.mark.django_db
def test_digest_check_accepts_a_restored_trail_and_names_lost_or_rewritten_history(tmp_path, capsys):
    check = _load(ROOT / "deploy" / "check_audit_digests.py")
    for i in range(3):
        audit.record("deploy.drill", by=None, object_type="thing", object_id=str(i))
    publish_audit_digest()
    digests = [{"date": d.date.isoformat(), "count": d.count, "hash": d.hash} for d in all_digests()]
    archive = tmp_path / "audit-digests.json"

    archive.write_text(json.dumps({"algorithm": "sha256", "digests": digests}))
    assert check.main(["check", str(archive)]) == 0

    later = [*digests, {"date": "2099-01-01", "count": digests[0]["count"] + 50, "hash": "a" * 64}]
    archive.write_text(json.dumps({"digests": later}))
    assert check.main(["check", str(archive)]) == 3
    assert "2099-01-01" in capsys.readouterr().out

    rewritten = [{**digests[0], "hash": "b" * 64}]
    archive.write_text(json.dumps({"digests": rewritten}))
    assert check.main(["check", str(archive)]) == 1

    archive.write_text("not json")
    assert check.main(["check", str(archive)]) == 2
