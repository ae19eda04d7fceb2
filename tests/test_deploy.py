"""The deployment recipe in deploy/ cannot rot silently.

No container engine runs on the test machine, so the image is not built here; instead every file
is checked statically against the repository it deploys: the compose file's structure, that the
Dockerfile builds the model and the index at build time as a non-root user from files that exist,
that nginx accepts its configuration (``nginx -t`` with a throw-away certificate), that systemd
accepts the unit (``systemd-analyze verify``), and that every ``BOT_*`` variable they set is a
real setting.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import build_parser
from bot.settings import ROOT, Settings
from tests.servers import nginx_binary

DEPLOY = ROOT / "deploy"
SETTINGS = {f"BOT_{name.upper()}" for name in Settings.model_fields}


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _bot_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
        and "profiles" not in service
    }


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def test_compose_runs_replicas_behind_nginx_with_postgres() -> None:
    compose = _compose()
    services = compose["services"]
    bots = _bot_services(compose)
    assert len(bots) >= 2, "N webhook replicas"
    assert services["db"]["image"].startswith("postgres:")
    assert "healthcheck" in services["db"]
    for name, bot in bots.items():
        env = bot["environment"]
        assert env["BOT_STORAGE_URL"].startswith("postgresql://"), name
        assert env["BOT_WEBHOOK_REGISTER"] == "false", f"{name} must not call setWebhook"
        assert bot["depends_on"]["db"]["condition"] == "service_healthy"
        assert bot["env_file"] == "bot.env" and (DEPLOY / "bot.env.example").is_file()
    setup = services["webhook"]
    assert setup["command"][-2:] == ["webhook", "set"] and setup["restart"] == "no"
    nginx = services["nginx"]
    assert set(nginx["depends_on"]) == set(bots)
    mounted = {v.split(":")[0] for v in nginx["volumes"]}
    assert "./nginx.conf" in mounted
    # every replica is in nginx's upstream, and nothing else is
    upstream = re.search(
        r"upstream contract_bot \{(.*?)\}", (DEPLOY / "nginx.conf").read_text(), re.S
    )
    assert upstream is not None
    servers = set(re.findall(r"server (\w+):8443", upstream.group(1)))
    assert servers == set(bots)


def test_every_bot_variable_is_a_real_setting() -> None:
    used: set[str] = set()
    for bot in _bot_services(_compose()).values():
        used |= set(bot["environment"])
    for path in (DEPLOY / "bot.env.example", DEPLOY / "Dockerfile"):
        used |= set(re.findall(r"\b(BOT_[A-Z_]+)=", path.read_text(encoding="utf-8")))
    unknown = sorted(used - SETTINGS)
    assert not unknown, f"deploy/ sets variables no setting reads: {unknown}"


def test_dockerfile_builds_model_and_index_at_build_time_as_non_root() -> None:
    steps = _dockerfile()
    users = [args for instruction, args in steps if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")
    runs = " ".join(args for instruction, args in steps if instruction == "RUN")
    assert "torch==2.13.0" in runs and "download.pytorch.org/whl/cpu" in runs
    assert "scripts/fetch_model.py" in runs and "scripts/build_index.py" in runs
    for instruction, args in steps:
        if instruction == "COPY":
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    for script in re.findall(r"(scripts/\w+\.py)", runs):
        assert (ROOT / script).is_file(), script
    cmd = next(args for instruction, args in reversed(steps) if instruction == "CMD")
    command = [part.strip(' "') for part in cmd.strip("[]").split(",")]
    assert command[0].endswith("contract-bot")
    build_parser().parse_args(command[1:])  # a real subcommand
    healthcheck = next(args for instruction, args in steps if instruction == "HEALTHCHECK")
    assert "/healthz" in healthcheck


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (Debian `nginx`)")
def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost",
            "-keyout", str(tmp_path / "privkey.pem"), "-out", str(tmp_path / "fullchain.pem"),
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    conf = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    # Run it as it is, with the certificate folder and the replicas' host names (which only
    # resolve inside compose) pointed at this machine.
    conf = conf.replace("/etc/nginx/certs", str(tmp_path))
    conf = re.sub(r"server (\w+):8443", "server 127.0.0.1:8443", conf)
    conf = f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n" + conf
    (tmp_path / "nginx.conf").write_text(conf, encoding="utf-8")
    result = subprocess.run(
        [nginx_binary() or "nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    unit = tmp_path / "contract-bot.service"
    shutil.copy(DEPLOY / "contract-bot.service", unit)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    # The unit points at the installed checkout, which this machine does not have.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line
    ]
    assert not problems, problems
    text = unit.read_text(encoding="utf-8")
    assert "ExecStart=/opt/contract-bot/.venv/bin/contract-bot telegram" in text
    assert re.search(r"^User=(?!root)\w", text, re.M)
    assert "KillSignal=SIGTERM" in text and "ExecReload=/bin/kill -HUP $MAINPID" in text
