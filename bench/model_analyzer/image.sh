#!/bin/sh
# The model analyzer image of tests/bench/test_model_analyzer.py: Triton's model analyzer 1.58.0
# (`pip install triton-model-analyzer`, as its users install it) in the perf_analyzer 2.60 image
# of bench/perf_analyzer/image.sh, whose venv puts perf_analyzer on PATH (model analyzer runs it
# as a subprocess). Built once per machine; needs podman and PyPI.
set -eu
image=${1:-localhost/model-analyzer:1.58.0}
base=localhost/perf-analyzer:2.60

podman image exists "$image" && exit 0
podman image exists "$base" || "$(dirname "$0")/../perf_analyzer/image.sh" "$base"
context=$(mktemp -d /var/tmp/model-analyzer.XXXXXX)
trap 'rm -rf "$context"' EXIT
cat >"$context/Containerfile" <<CONTAINERFILE
FROM $base
RUN /opt/pa/bin/pip install --no-cache-dir 'triton-model-analyzer==1.58.0' \
 && /opt/pa/bin/model-analyzer --help >/dev/null
ENTRYPOINT ["model-analyzer"]
CONTAINERFILE
podman build --network host -t "$image" "$context"
