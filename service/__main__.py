"""`latentserve-serve` / `python -m service`: run the service under uvicorn.

Settings come from LATENTSERVE_* variables (docs/service.md); `--workers N` overrides
LATENTSERVE_WORKERS.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from service.core.settings import get_settings


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"needs at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="latentserve-serve", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers",
        type=positive,
        help="server processes on one port (default: LATENTSERVE_WORKERS, else 1)",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.workers is not None:
        settings = settings.model_copy(update={"workers": args.workers})
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.workers > 1:
        from service.runtime.workers import Supervisor

        sys.exit(Supervisor(settings).run())
    else:
        from service.runtime.server import serve

        serve(settings)


if __name__ == "__main__":
    main()
