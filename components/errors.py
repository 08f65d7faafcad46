"""Errors a user can act on: the CLI prints them as one line and exits with status 1."""


class InputError(ValueError):
    """Bad input (file, row, feature or parameter); the message names which."""
