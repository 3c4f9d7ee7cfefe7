"""The service tests' shipped-model app (in process) and server, for the contract tests here."""

from tests.service.conftest import shipped, shipped_app, shipped_server  # noqa: F401
