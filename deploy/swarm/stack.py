"""The Swarm stack files, derived from docker-compose.yml: one compose file for both modes.

`docker compose up` reads docker-compose.yml as it is. `docker stack deploy` rejects a few
things in it that only Compose knows (profiles, `depends_on` conditions, the GPU `devices`
reservation, the project `name`), and a swarm needs a few things Compose must not have (the
replicas' ports published on each node). So the stack files are written from the compose file
by this module, never by hand:

- a service with `x-swarm: false` is not part of the stack (nginx: on a swarm the load balancer
  sits in front of the nodes, see deploy/swarm/haproxy.cfg);
- a service's `x-swarm` mapping is merged over it (mappings merge key by key, anything else
  replaces, `null` removes the key);
- what a swarm has no use for is dropped: `build`, `profiles`, `depends_on`, `restart` (a
  service restarts by `deploy.restart_policy`), `security_opt` (services cannot set it),
  `container_name` and every `x-` key;
- the services without a profile go to stack.yml, those of profile P to stack.P.yml, a file
  to add with a second `-c`.

    python -m deploy.swarm.stack            # rewrites deploy/swarm/stack*.yml
    python -m deploy.swarm.stack --check    # fails when they differ from the compose file
    docker stack deploy -c deploy/swarm/stack.yml latentserve
    docker stack deploy -c deploy/swarm/stack.yml -c deploy/swarm/stack.gpu.yml latentserve

`${VAR:-default}` stays as it is: `docker stack deploy` interpolates it at deploy time, as
Compose does. tests/deploy/test_container_files.py checks that the files are up to date and
that the Docker CLI accepts them; tests/deploy/test_swarm.py deploys stack.yml on 3 nodes.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
OUT_DIR = ROOT / "deploy" / "swarm"
# The oldest file format with everything used (deploy.placement.max_replicas_per_node): read by
# Docker 20.10 (Debian 12's docker.io) and by later CLIs alike.
STACK_VERSION = "3.8"
COMPOSE_ONLY = ("build", "profiles", "depends_on", "restart", "security_opt", "container_name")
HEADER = """\
# Written by `python -m deploy.swarm.stack` from docker-compose.yml: edit that file, then run it
# again (a test fails while this file is out of date). {what}
# See docs/deploy.md#docker-swarm.
"""


def merge(base: Any, over: Any) -> Any:
    """`over` merged onto `base`: mappings key by key, `None` removes, anything else replaces."""
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return copy.deepcopy(over)
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge(merged.get(key), value)
    return merged


def swarm_service(service: dict) -> dict | None:
    """The service as a swarm runs it, or None when it is not part of the stack."""
    over = service.get("x-swarm", {})
    if over is False:
        return None
    merged = merge(service, over)
    return {
        key: value
        for key, value in merged.items()
        if key not in COMPOSE_ONLY and not key.startswith("x-")
    }


def stack_files(compose: dict) -> dict[str, dict]:
    """File name -> stack: the services without a profile, then one file per profile."""
    groups: dict[str, dict] = {}
    for name, service in compose["services"].items():
        converted = swarm_service(service)
        if converted is None:
            continue
        for profile in service.get("profiles") or [None]:
            file = "stack.yml" if profile is None else f"stack.{profile}.yml"
            groups.setdefault(file, {})[name] = converted
    stacks = {}
    for file, services in groups.items():
        stack: dict[str, Any] = {"version": STACK_VERSION, "services": services}
        for section in ("networks", "volumes", "configs", "secrets"):
            if compose.get(section):
                stack[section] = compose[section]
        stacks[file] = stack
    return stacks


def render(file: str, stack: dict) -> str:
    what = (
        "The services of docker-compose.yml without a profile."
        if file == "stack.yml"
        else f"Profile {file.split('.')[1]}: add it with a second -c after stack.yml."
    )
    body = yaml.safe_dump(stack, sort_keys=False, default_flow_style=False, width=100)
    return HEADER.format(what=what) + body


def rendered(compose_file: Path = COMPOSE_FILE) -> dict[str, str]:
    compose = yaml.safe_load(compose_file.read_text())
    return {file: render(file, stack) for file, stack in stack_files(compose).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for file, text in rendered().items():
        path = OUT_DIR / file
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(file)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python -m deploy.swarm.stack", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
