"""The service tests' real servers, for the contract tests here."""

from tests.service.conftest import shipped, shipped_server  # noqa: F401
