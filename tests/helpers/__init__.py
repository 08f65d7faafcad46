"""Helpers shared by the tests: data builders, OTA fixtures and helpers, command-line runners."""

from pathlib import Path

#: The repository's root folder (the project's source tree).
REPO = Path(__file__).resolve().parents[2]
