#!/bin/sh
# A Python base image made from Debian's packages, for machines that reach Debian's archive but
# no image registry (the development and CI machines). Pass it to the Dockerfile with
#   --build-arg PYTHON_IMAGE=localhost/python-base:bookworm
# Does nothing when podman already holds the image, so it is built once per machine.
# Needs root, debootstrap and podman.
set -eu
image=${1:-localhost/python-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

podman image exists "$image" && exit 0

root=$(mktemp -d /var/tmp/python-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
# wget: for health checks (the nginx image made from this base).
debootstrap --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates,wget \
    bookworm "$root" "$mirror"
# Trust what the host trusts: TLS to the package registries may pass a local authority, and
# Debian's pip reads this bundle.
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import --change 'CMD ["python3"]' - "$image"
