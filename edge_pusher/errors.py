"""Errors that reach a user.

Every user mistake (bad flag, missing key, version not newer, bucket held by another publisher)
raises :class:`OtaError` with a message that reads as one line, so the CLI can print it without a
traceback. Anything else is a bug and keeps its traceback.
"""


class OtaError(Exception):
    """A user-facing failure: one readable line, exit status 1."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class PreconditionFailed(OtaError):
    """A conditional bucket write lost: the object exists, or changed since it was read."""


class NotFound(OtaError):
    """The bucket has no object under this key."""
