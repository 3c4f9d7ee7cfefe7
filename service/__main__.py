"""`latentserve-serve` / `python -m service`: run the service under uvicorn; `openapi` writes (or
with --check, checks) openapi/openapi.json.

Settings come from LATENTSERVE_* variables (docs/service.md); `--host`, `--port` and
`--workers` override theirs. A mistake is answered in one sentence (exit 2 for the command line
or the settings, 1 for a failure); `--debug` adds the traceback. A model directory that is
missing or holds no model is said at the start too, and the server stays up (live, not ready):
models exported there later are served after a SIGHUP.
"""

from __future__ import annotations

import argparse
import socket
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from service.core.auth import KeyConfigError, configured_keys
from service.core.errors import validation_errors
from service.core.logging import configure_logging
from service.core.settings import Settings, get_settings

PROG = "latentserve-serve"
USAGE, FAILURE = 2, 1


class CliError(Exception):
    """A mistake said in one sentence, with the exit status it calls for."""

    def __init__(self, message: str, status: int = FAILURE) -> None:
        super().__init__(message)
        self.status = status


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"needs a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"needs at least 1, got {value}")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"needs a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"needs a port in 0..65535, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve the models of the model directory (LATENTSERVE_MODEL_DIR) over HTTP.",
        epilog="`%(prog)s openapi [--check]` writes or checks openapi/openapi.json instead.",
    )
    main_parser.add_argument("--host", help="address to listen on (default: LATENTSERVE_HOST)")
    main_parser.add_argument("--port", type=port, help="port (default: LATENTSERVE_PORT, 8000)")
    main_parser.add_argument(
        "--workers",
        type=positive,
        help="server processes on one port (default: LATENTSERVE_WORKERS, else 1)",
    )
    main_parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return main_parser


def openapi_parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog=f"{PROG} openapi", description="Write openapi/openapi.json from the code."
    )
    command.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    return command


def read_settings(args: argparse.Namespace) -> Settings:
    try:
        settings = get_settings()
    except ValidationError as exc:
        _, errors = validation_errors(exc.errors(include_url=False, include_input=False))
        wrong = "; ".join(
            f"LATENTSERVE_{'_'.join(e['loc']).upper()}: {e['msg'].lower()}" for e in errors[:3]
        )
        raise CliError(f"invalid settings: {wrong}", USAGE) from exc
    overrides = {name: getattr(args, name) for name in ("host", "port", "workers")}
    return settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def check_settings(settings: Settings) -> None:
    """What would stop the server later, said now (unusable keys), and what would leave it
    serving nothing (no models), said at the start instead of only by a 503."""
    try:
        configured_keys(settings)
    except KeyConfigError as exc:
        raise CliError(str(exc), USAGE) from exc
    model_dir = settings.model_dir
    if not model_dir.is_dir():
        warn(
            f"the model directory {model_dir} does not exist, so nothing is served: /readyz "
            "answers 503 until it holds models and a SIGHUP reloads them (LATENTSERVE_MODEL_DIR "
            "names another)"
        )
    elif not any(has_models(model_dir)):
        warn(
            f"the model directory {model_dir} holds no model folder (one with a manifest.json "
            "each), so nothing is served: /readyz answers 503 until one is exported there and "
            "a SIGHUP reloads them (LATENTSERVE_MODEL_DIR names another)"
        )


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def has_models(model_dir: Path):
    return (
        folder
        for folder in model_dir.iterdir()
        if folder.is_dir() and (folder / "manifest.json").is_file()
    )


def serve(settings: Settings) -> int:
    configure_logging(settings.log_level, settings.log_format)
    if settings.workers > 1:
        from service.runtime.workers import Supervisor

        return Supervisor(settings).run()
    from service.runtime.server import serve as serve_one

    serve_one(settings)
    return 0


def check_listening(settings: Settings) -> None:
    """That the address can be listened on (as uvicorn binds it), said in a sentence if not."""
    try:
        with socket.create_server((settings.host, settings.port)):
            pass
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise CliError(f"cannot listen on {settings.host}:{settings.port}: {reason}") from exc


def write_openapi(argv: Sequence[str]) -> int:
    args = openapi_parser().parse_args(argv)
    from service.app import openapi_document
    from service.openapi import write_or_check

    return write_or_check(openapi_document(), args.check)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["openapi"]:
        sys.exit(write_openapi(argv[1:]))
    args = parser().parse_args(argv[1:] if argv[:1] == ["serve"] else argv)
    try:
        settings = read_settings(args)
        check_settings(settings)
        check_listening(settings)
        sys.exit(serve(settings))
    except CliError as exc:
        debug = args.debug or _debug_logging()
        if debug and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        sys.exit(exc.status)


def _debug_logging() -> bool:
    try:
        return get_settings().log_level == "debug"
    except ValidationError:
        return False


if __name__ == "__main__":
    main()
