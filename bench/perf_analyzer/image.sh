#!/bin/sh
# The perf_analyzer image of bench/perf_analyzer.py: Triton's perf_analyzer 2.60 (the PyPI wheel,
# which needs glibc >= 2.38: Debian 12 has 2.36, and pip there silently installs the 0.1.0
# placeholder instead) on a Debian trixie base made with debootstrap, as deploy/podman makes the
# serving image's base. Built once per machine; needs root, debootstrap, podman and the archive.
set -eu
image=${1:-localhost/perf-analyzer:2.60}
base=localhost/debian-base:trixie
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

podman image exists "$image" && exit 0
if ! podman image exists "$base"; then
    root=$(mktemp -d /var/tmp/trixie-base.XXXXXX)
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        trixie "$root" "$mirror"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | podman import - "$base"
fi
context=$(mktemp -d /var/tmp/perf-analyzer.XXXXXX)
cat >"$context/Containerfile" <<CONTAINERFILE
FROM $base
RUN python3 -m venv /opt/pa && /opt/pa/bin/pip install --no-cache-dir 'perf-analyzer==2.60.0' \
 && /opt/pa/bin/perf_analyzer --version
ENV PATH=/opt/pa/bin:\$PATH
ENTRYPOINT ["perf_analyzer"]
CONTAINERFILE
podman build --network host -t "$image" "$context"
rm -rf "$context"
