"""Service settings, read from environment variables prefixed `LATENTSERVE_`."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]

CommaList = Annotated[list[str], NoDecode]


def installed_models() -> Path:
    """Where `pip install .` puts the shipped models: package data of `service` (setup.py)."""
    return Path(str(resources.files("service"))) / "shipped_models"


def default_model_dir() -> Path:
    """`./exported_models` when the working directory has one, else the shipped models: the
    copy installed with the package (a wheel), else the project's own folder (a source tree or
    an editable install)."""
    here = Path.cwd() / "exported_models"
    if here.is_dir():
        return here
    installed = installed_models()
    return installed if installed.is_dir() else PROJECT_ROOT / "exported_models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LATENTSERVE_", extra="ignore")

    model_dir: Path = Field(default_factory=default_model_dir)
    default_model: str = Field(
        "mnist-vae", description="Served when a request names no model; else the first loaded."
    )
    backend: Literal["onnx", "torchscript"] = "onnx"
    providers: CommaList = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="ONNX Runtime execution providers in order of preference, comma-separated.",
    )
    require_cuda: bool = Field(
        False, description="Refuse to start instead of falling back to the CPU."
    )
    torch_device: str = Field("cpu", description="TorchScript device: cpu, cuda or cuda:N.")
    # One thread per op: these graphs are small, so concurrency across requests (and replicas)
    # uses the cores better than splitting each op; measured in docs/service.md.
    intra_op_threads: int = Field(1, ge=0, description="0 leaves the runtime's default.")
    inter_op_threads: int = Field(0, ge=0, description="0 leaves the runtime's default.")

    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0)
    max_images: int = Field(1024, gt=0, description="Images (or latents) per request.")
    max_image_pixels: int = Field(
        4096 * 4096, gt=0, description="Width x height of one uploaded image, before decoding."
    )
    max_steps: int = Field(64, ge=2, description="Frames of one interpolation.")
    max_samples: int = Field(256, gt=0, description="Largest n of /sample.")

    # Dynamic batching and shedding, per graph; defaults measured in docs/service.md.
    batch_max_size: int = Field(64, gt=0, description="Images per graph call, at most.")
    batch_max_wait_ms: float = Field(
        0.0, ge=0, le=1000, description="How long an idle graph waits for a batch to fill."
    )
    queue_max_requests: int = Field(
        256, gt=0, description="Requests waiting per graph; more are refused with 503."
    )
    queue_deadline_ms: float = Field(
        500.0, gt=0, description="Longest wait in a graph's queue; a request past it gets 503."
    )

    cors_origins: CommaList = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    grpc_port: int = Field(
        8001, ge=0, le=65535, description="The Open Inference Protocol over gRPC; 0: off."
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["plain", "json"] = Field(
        "plain", description="Access log lines: plain text, or one JSON object each."
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP endpoint for traces (e.g. http://collector:4318/v1/traces); "
        "tracing is off without it. Needs the `tracing` extra.",
    )

    # Processes, shutdown and connection limits (service/runtime/).
    workers: int = Field(1, ge=1, le=64, description="Server processes on the one port.")
    drain_delay: float = Field(
        0.0, ge=0, description="Seconds from SIGTERM (readiness 503) to closing the listener."
    )
    shutdown_grace: float = Field(
        20.0, gt=0, description="Seconds from SIGTERM to exit, the drain delay included."
    )
    header_timeout: float = Field(10.0, gt=0, description="Seconds to send a request head.")
    body_timeout: float = Field(10.0, gt=0, description="Seconds between two body chunks.")
    min_body_rate: float = Field(
        1024.0, ge=0, description="Bytes/s a body must average once past body_timeout."
    )
    send_timeout: float = Field(30.0, gt=0, description="Seconds a client may stop reading.")
    keep_alive_timeout: float = Field(5.0, gt=0, description="Idle seconds of a keep-alive.")
    max_connections: int = Field(1000, gt=0, description="Beyond it requests get 503.")

    # Keys are SecretStr so that no repr or log of the settings shows them.
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="API keys, comma-separated; none: the API is open."
    )
    api_key_file: Path | None = Field(None, description="A file of API keys, one per line.")
    public_metrics: bool = Field(False, description="Serve /metrics without a key.")

    @field_validator("providers", "cors_origins", "api_keys", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("model_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()


@cache
def get_settings() -> Settings:
    return Settings()
