# syntax=docker/dockerfile:1.7
#
# Serving images for latentserve: ONNX Runtime and the service, no torch, no build tools.
#
#   docker build -t latentserve:cpu .                     # default target: CPU
#   docker build -t latentserve:gpu --target gpu .        # CUDA 12 + cuDNN 9, onnxruntime-gpu
#
# The shipped models (those of training/zoo.toml, admitted one by one by .dockerignore, so a
# user's own folder in exported_models/ stays out) are baked in at /opt/latentserve/models;
# mount another folder and point LATENTSERVE_MODEL_DIR at it to serve your own (docs/deploy.md).
# The wheel built here carries no models (setup.py is not in the context; see setup.py).

ARG PYTHON_IMAGE=python:3.12-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# ---------------------------------------------------------------------------------------------
# Build stages: a virtual environment at /opt/venv holding the service and its dependencies.
# Then the venv sheds what serving never loads: pip and setuptools (so the serving stages carry
# no installer, no build backend and no source tree), the packages' own test suites (numpy's,
# 17 MB) and ONNX Runtime's offline tool kits (transformers, quantization, tools: 10 MB).
# docs/deploy.md lists what remains.
# ---------------------------------------------------------------------------------------------
# The serving dependencies, read from pyproject.toml. Installed before the code is copied, from
# this file alone, so that a change to the code or to another part of pyproject.toml (an extra,
# a tool's settings) reuses the installed layer.
FROM ${PYTHON_IMAGE} AS requirements
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > requirements.txt

FROM ${PYTHON_IMAGE} AS build-cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY --from=requirements /src/requirements.txt ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -r requirements.txt
COPY pyproject.toml README.md ./
COPY service ./service
COPY client ./client
RUN /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/pip uninstall -y setuptools pip \
 && cd /opt/venv/lib/python3*/site-packages \
 && find . -depth -type d -name tests -exec rm -rf {} + \
 && rm -rf onnxruntime/transformers onnxruntime/quantization onnxruntime/tools

FROM ${CUDA_IMAGE} AS build-gpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY --from=requirements /src/requirements.txt ./
# onnxruntime and onnxruntime-gpu install the same module: the GPU build replaces the CPU one.
RUN sed -i 's/^onnxruntime\b.*/onnxruntime-gpu>=1.18/' requirements.txt \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install -r requirements.txt
COPY pyproject.toml README.md ./
COPY service ./service
COPY client ./client
RUN /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/pip uninstall -y setuptools pip \
 && cd /opt/venv/lib/python3*/site-packages \
 && find . -depth -type d -name tests -exec rm -rf {} + \
 && rm -rf onnxruntime/transformers onnxruntime/quantization onnxruntime/tools

# ---------------------------------------------------------------------------------------------
# GPU serving image: docker build --target gpu .
# ---------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS gpu
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 latentserve \
 && useradd --system --uid 10001 --gid 10001 --no-create-home latentserve
COPY --from=build-gpu /opt/venv /opt/venv
COPY --chown=root:root exported_models /opt/latentserve/models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LATENTSERVE_HOST=0.0.0.0 \
    LATENTSERVE_PORT=8000 \
    LATENTSERVE_MODEL_DIR=/opt/latentserve/models \
    LATENTSERVE_PROVIDERS=CUDAExecutionProvider,CPUExecutionProvider
USER 10001:10001
EXPOSE 8000 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["latentserve-serve"]

# ---------------------------------------------------------------------------------------------
# CPU serving image (the default target, last so that a plain `docker build .` builds it).
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS serve
RUN groupadd --system --gid 10001 latentserve \
 && useradd --system --uid 10001 --gid 10001 --no-create-home latentserve
COPY --from=build-cpu /opt/venv /opt/venv
COPY --chown=root:root exported_models /opt/latentserve/models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LATENTSERVE_HOST=0.0.0.0 \
    LATENTSERVE_PORT=8000 \
    LATENTSERVE_MODEL_DIR=/opt/latentserve/models
USER 10001:10001
EXPOSE 8000 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["latentserve-serve"]
