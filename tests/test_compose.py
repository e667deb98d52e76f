"""Parse-level checks of the docker-compose deployment (Docker itself is not run in CI)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def _flag_value(command: list[str] | str, flag: str) -> str | None:
    """Value following ``flag`` in a command list (``--flag value`` or ``--flag=value``)."""
    args = command.split() if isinstance(command, str) else [str(a) for a in command]
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def test_services_present(compose: dict[str, Any]) -> None:
    assert {"redis", "postgres", "worker", "api"} <= set(compose["services"])


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name in ("redis", "postgres", "worker", "api"):
        check = compose["services"][name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no health check"


def test_redis_is_a_durable_non_evicting_broker(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert _flag_value(command, "--appendonly") == "yes"
    assert _flag_value(command, "--maxmemory-policy") == "noeviction"
    assert any(str(v).endswith(":/data") for v in compose["services"]["redis"]["volumes"])


def test_postgres_keeps_data_in_a_named_volume(compose: dict[str, Any]) -> None:
    volumes = compose["services"]["postgres"]["volumes"]
    named = [v.split(":", 1)[0] for v in volumes if v.endswith(":/var/lib/postgresql/data")]
    assert named and named[0] in compose["volumes"]


def test_worker_is_prefork_concurrency_one(compose: dict[str, Any]) -> None:
    command = compose["services"]["worker"]["command"]
    assert "celery" in str(command[0] if isinstance(command, list) else command)
    assert _flag_value(command, "--concurrency") == "1"
    assert _flag_value(command, "--pool") == "prefork"


def test_worker_can_be_scaled(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    # A fixed container name or a published host port makes `--scale worker=N` fail.
    assert "container_name" not in worker
    assert "ports" not in worker


def test_worker_threads_follow_its_cpu_limit(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    cpus = worker["deploy"]["resources"]["limits"]["cpus"]
    env = worker["environment"]
    variable = re.search(r"\$\{(\w+)", str(cpus))
    assert variable, "cpu limit should come from a variable shared with the thread count"
    for key in ("SHITI_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        assert variable.group(1) in str(env[key]), key


def test_worker_has_a_model(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert worker["environment"]["SHITI_MODEL"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^COPY models/", dockerfile, re.M), "model is not baked into the image"


def test_api_runs_shiti_serve_after_stores_are_healthy(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert api["command"][:2] == ["shiti", "serve"]
    for store in ("redis", "postgres"):
        assert api["depends_on"][store]["condition"] == "service_healthy"


def test_schema_is_upgraded_before_workers_and_api_start(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["shiti", "db", "upgrade"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "api"):
        assert compose["services"][name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_image_and_serving_dependencies_carry_no_torch() -> None:
    import tomllib

    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    # The image installs the project without extras, and checks torch did not come with it
    assert re.search(r"^RUN pip install \. && ! python -c \"import torch\"", text, re.M)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[<>=\[ ]", dep)[0].lower() for dep in project["dependencies"]}
    assert "onnxruntime" in names and not names & {"torch", "transformers", "modelscope", "pytorch-crf"}
    train = {re.split(r"[<>=\[ ]", dep)[0].lower() for dep in project["optional-dependencies"]["train"]}
    assert {"torch", "transformers", "onnx"} <= train


def test_env_example_covers_compose_variables(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{(\w+)", text))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    defined = set(re.findall(r"^(\w+)=", example, re.M))
    assert used <= defined, f"missing from .env.example: {sorted(used - defined)}"


def test_secrets_have_no_usable_default_and_every_client_uses_them(compose: dict[str, Any]) -> None:
    env = compose["x-shiti-env"]
    assert ":?" in env["SHITI_DATABASE_URL"] and "change-me" not in env["SHITI_DATABASE_URL"]
    assert env["SHITI_REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?")
    assert _flag_value(compose["services"]["redis"]["command"], "--requirepass") == "${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}"
    assert ":?" in compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert compose["services"]["api"]["environment"]["SHITI_ADMIN_KEY"].startswith("${SHITI_ADMIN_KEY:?")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "SHITI_ADMIN_KEY"):
        assert re.search(rf"^{name}=$", example, re.M), f"{name} must be empty in .env.example"
