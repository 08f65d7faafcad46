"""The package version, read from installed metadata so there is one source of truth."""

from importlib import metadata


def _installed_version() -> str:
    try:
        return metadata.version("edgeship")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


VERSION: str = _installed_version()
