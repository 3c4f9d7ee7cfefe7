"""Runs the health checks of running podman containers, where systemd would.

podman schedules each container's health check with a systemd timer; on a machine without
systemd (the development and CI machines) no check ever runs, health stays `starting`, and
`depends_on: condition: service_healthy` waits forever. This runs `podman healthcheck run`
(the image's or compose file's own check, inside the container) for every running container
that has one, every `period` seconds, so podman records health as it would under systemd.

    python -m deploy.podman.healthchecks --period 2     # Ctrl-C stops it
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import threading

HEALTH_STATES = ("starting", "healthy", "unhealthy")


def containers_with_health_checks() -> list[str]:
    filters = [f"--filter=health={state}" for state in HEALTH_STATES]
    listing = subprocess.run(
        ["podman", "ps", "--quiet", "--no-trunc", *filters],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return listing.stdout.split()


def run_health_checks() -> None:
    for container in containers_with_health_checks():
        # Exit 1 is "unhealthy", recorded by podman; a container gone meanwhile is no error here.
        subprocess.run(["podman", "healthcheck", "run", container], capture_output=True, timeout=60)


class HealthCheckRunner:
    """A background thread running every container's health check each `period` seconds."""

    def __init__(self, period: float = 2.0) -> None:
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="podman-healthchecks", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(subprocess.SubprocessError):
                run_health_checks()
            self._stop.wait(self.period)

    def __enter__(self) -> HealthCheckRunner:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--period", type=float, default=2.0, help="seconds between rounds")
    args = parser.parse_args()
    with HealthCheckRunner(args.period), contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


if __name__ == "__main__":
    main()
