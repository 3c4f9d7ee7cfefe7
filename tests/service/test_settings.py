"""Settings from the environment, and the backends' device checks at start-up."""

from __future__ import annotations

import pytest

from service.core.settings import Settings
from service.models.backends import BackendUnavailable, create_backend


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("LATENTSERVE_PROVIDERS", "CUDAExecutionProvider, CPUExecutionProvider")
    monkeypatch.setenv("LATENTSERVE_CORS_ORIGINS", "http://a.example,http://b.example")
    monkeypatch.setenv("LATENTSERVE_MAX_IMAGES", "8")
    monkeypatch.setenv("LATENTSERVE_MODEL_DIR", "relative/models")
    settings = Settings()
    assert settings.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert settings.cors_origins == ["http://a.example", "http://b.example"]
    assert settings.max_images == 8
    assert settings.model_dir.is_absolute() and settings.model_dir.name == "models"
    assert (settings.host, settings.port, settings.backend) == ("127.0.0.1", 8000, "onnx")


def test_settings_reject_nonsense(monkeypatch):
    monkeypatch.setenv("LATENTSERVE_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="backend"):
        Settings()


def test_require_cuda_refuses_to_start_without_cuda():
    with pytest.raises(BackendUnavailable, match="CUDA"):
        create_backend(
            Settings(providers=["CUDAExecutionProvider", "CPUExecutionProvider"], require_cuda=True)
        )
    with pytest.raises(BackendUnavailable, match="omit"):
        create_backend(Settings(providers=["CPUExecutionProvider"], require_cuda=True))


def test_missing_cuda_falls_back_to_cpu_when_not_required():
    backend = create_backend(Settings(providers=["CUDAExecutionProvider", "CPUExecutionProvider"]))
    assert backend.describe() == {"backend": "onnx", "providers": ["CPUExecutionProvider"]}


def test_torchscript_on_missing_cuda_is_a_startup_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BackendUnavailable, match="no CUDA"):
        create_backend(Settings(backend="torchscript", torch_device="cuda"))
