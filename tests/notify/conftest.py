"""The `live` pilot of tests/evaluation, for the alert events."""

from tests.evaluation.conftest import live  # noqa: F401 - a fixture, used by name
