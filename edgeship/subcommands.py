"""The types every command group of ``edgeship`` shares, so each group's module is typed alike.

Each group's module has ``register_<group>(subparsers)``, which :mod:`edgeship.cli` calls once,
and handlers ``cmd_<group>_<command>(args) -> int`` (``cmd_<command>`` for a command without a
group), which raise :class:`~edgeship.errors.EdgeshipError` for what the user can fix; the root
prints it. Standard library only: the device's commands import this on a base install.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

#: What ``ArgumentParser.add_subparsers()`` returns. argparse does not export the class under a
#: public name, so this alias is the one place that names it.
Subparsers: TypeAlias = (
    "argparse._SubParsersAction[argparse.ArgumentParser]"  # pyright: ignore[reportPrivateUsage] - argparse's only name for it
)

#: A command's handler: the parsed arguments in, the exit status out.
Handler: TypeAlias = Callable[[argparse.Namespace], int]
