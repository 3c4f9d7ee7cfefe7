# syntax=docker/dockerfile:1.7
#
# Serving images for latentserve: ONNX Runtime and the service, no torch, no build tools.
#
#   docker build -t latentserve:cpu .                     # default target: CPU
#   docker build -t latentserve:gpu --target gpu .        # CUDA 12 + cuDNN 9, onnxruntime-gpu
#
# The shipped models are baked in at /opt/latentserve/models; mount another folder and point
# LATENTSERVE_MODEL_DIR at it to serve your own (see docs/deploy.md).

ARG PYTHON_IMAGE=python:3.12-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# ---------------------------------------------------------------------------------------------
# Build stages: a virtual environment at /opt/venv holding the service and its dependencies.
# pip removes itself last, so the serving stages carry neither pip nor the source tree nor any
# build backend.
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build-cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY client ./client
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install . \
 && /opt/venv/bin/pip uninstall -y pip

FROM ${CUDA_IMAGE} AS build-gpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY client ./client
# onnxruntime and onnxruntime-gpu install the same module: keep only the GPU build.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install . \
 && /opt/venv/bin/pip uninstall -y onnxruntime \
 && /opt/venv/bin/pip install "onnxruntime-gpu>=1.18" \
 && /opt/venv/bin/pip uninstall -y pip

# ---------------------------------------------------------------------------------------------
# GPU serving image: docker build --target gpu .
# ---------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS gpu
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home latentserve
COPY --from=build-gpu /opt/venv /opt/venv
COPY --chown=root:root exported_models /opt/latentserve/models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LATENTSERVE_HOST=0.0.0.0 \
    LATENTSERVE_PORT=8000 \
    LATENTSERVE_MODEL_DIR=/opt/latentserve/models \
    LATENTSERVE_PROVIDERS=CUDAExecutionProvider,CPUExecutionProvider
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["latentserve-serve"]

# ---------------------------------------------------------------------------------------------
# CPU serving image (the default target, last so that a plain `docker build .` builds it).
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS serve
RUN useradd --system --uid 10001 --user-group --no-create-home latentserve
COPY --from=build-cpu /opt/venv /opt/venv
COPY --chown=root:root exported_models /opt/latentserve/models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LATENTSERVE_HOST=0.0.0.0 \
    LATENTSERVE_PORT=8000 \
    LATENTSERVE_MODEL_DIR=/opt/latentserve/models
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["latentserve-serve"]
