"""The package version, read from installed metadata so there is one source of truth."""

from importlib import metadata

try:
    VERSION: str = metadata.version("edgeship")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"
