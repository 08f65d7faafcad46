"""One command line in the code as in the user's eyes: the root registers each group once, one
module owns each group, handlers are named one way, errors are raised (the root prints them),
and every default and the error prefix have one home."""

from __future__ import annotations

import argparse
import ast
from datetime import timedelta
from pathlib import Path

from edgeship import cli
from edgeship.subcommands import Handler
from tests.helpers import REPO

CLI_MODULES = ["edgeship/cli.py", "pipelines/commands.py", "pipelines/submit.py",
               "edge_pusher/cli.py", "edge_pusher/fleet/cli.py", "device/cli.py"]
SOURCE_FOLDERS = ["edgeship", "components", "pipelines", "edge_pusher", "device", "tfx_components"]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subcommands there, and only there
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
            ) -> dict[tuple[str, ...], Handler]:
    children = _subparsers(parser)
    if not children:
        return {path: parser.get_default("func")}
    found: dict[tuple[str, ...], Handler] = {}
    for name, child in children.items():
        found |= _leaves(child, (*path, name))
    return found


def test_every_command_has_a_handler_named_for_it() -> None:
    """``cmd_<group>_<command>`` (``cmd_<command>`` without a group); rollout's three signed
    changes share one handler."""
    leaves = _leaves(cli.build_parser())
    assert len(leaves) > 15
    for path, func in leaves.items():
        wanted = "cmd_" + "_".join(p.replace("-", "_") for p in path)
        if path[0] == "rollout" and path[1] in ("set", "halt", "revoke"):
            wanted = "cmd_rollout_change"
        assert func.__name__ == wanted, path


def test_each_group_lives_in_one_module() -> None:
    owners: dict[str, set[str]] = {}
    for path, func in _leaves(cli.build_parser()).items():
        owners.setdefault(path[0], set()).add(func.__module__)
    assert all(len(modules) == 1 for modules in owners.values()), owners
    assert owners["rollout"] == owners["fleet"] == {"edgeship.edge_pusher.fleet.cli"}


def _tree(path: str) -> ast.Module:
    return ast.parse((REPO / path).read_text(), filename=path)


def test_only_the_root_registers_groups() -> None:
    """No command module registers another's group (the rollout group was split across two
    modules that imported each other)."""
    for path in CLI_MODULES:
        calls = [node.func.id for node in ast.walk(_tree(path))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                 and node.func.id.startswith("register")]
        imports = [alias.name for node in ast.walk(_tree(path))
                   if isinstance(node, ast.ImportFrom) for alias in node.names
                   if alias.name.startswith("register")]
        if path == "edgeship/cli.py":
            assert calls == ["register"] and len(imports) == 9, (calls, imports)
        else:
            assert calls == [] and imports == [], (path, calls, imports)


def test_command_modules_use_no_other_modules_private_names() -> None:
    for path in CLI_MODULES:
        private = [f"{node.module}.{alias.name}" for node in ast.walk(_tree(path))
                   if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                       "edgeship") for alias in node.names if alias.name.startswith("_")]
        assert private == [], path


def _source_files() -> list[Path]:
    return [p for folder in SOURCE_FOLDERS for p in (REPO / folder).rglob("*.py")
            if "__pycache__" not in p.parts]


def test_the_prefix_is_spelled_once() -> None:
    """``edgeship: error:`` and ``edgeship: warning:`` come from ``errors.PREFIX`` only."""
    spelled = []
    for path in _source_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
        spelled += [f"{path.relative_to(REPO)}:{node.lineno}" for node in ast.walk(tree)
                    if isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and node.value.startswith("edgeship: ") and id(node) not in docstrings]
    assert spelled == []


def test_a_warning_carries_the_prefix(capsys) -> None:
    from edgeship.errors import PREFIX, warn

    warn("no reports")
    assert capsys.readouterr().err == f"{PREFIX}: warning: no reports\n"
    assert cli.PREFIX == PREFIX == "edgeship"


def test_publisher_flags_default_to_the_repositorys_own(tmp_path: Path) -> None:
    """Timestamp expiry and lock wait: the repository's constants, whatever the command."""
    from edgeship.edge_pusher.cli import TIMESTAMP_EXPIRY_HELP, open_repository
    from edgeship.edge_pusher.keys import init_keys
    from edgeship.edge_pusher.lock import DEFAULT_LOCK_WAIT
    from edgeship.edge_pusher.repository import DEFAULT_TIMESTAMP_EXPIRY

    init_keys(tmp_path / "keys")
    bucket = f"file://{tmp_path / 'bucket'}"
    parser = cli.build_parser()
    for argv in (["repo", "refresh"], ["rollout", "halt", "m", "1"], ["rollout", "watch",
                 "--broker", "mqtt://h", "--password-file", "p"]):
        args = parser.parse_args([*argv, "--bucket", bucket, "--keys", str(tmp_path / "keys")])
        repo = open_repository(args)
        assert (repo.timestamp_expiry, repo.lock_wait) == (DEFAULT_TIMESTAMP_EXPIRY,
                                                           DEFAULT_LOCK_WAIT), argv
    status = parser.parse_args(["fleet", "status", "--broker", "mqtt://h", "--password-file",
                                "p", "--bucket", bucket, "--keys", str(tmp_path / "keys")])
    assert open_repository(status).lock_wait == DEFAULT_LOCK_WAIT
    given = parser.parse_args(["repo", "refresh", "--bucket", bucket, "--keys",
                               str(tmp_path / "keys"), "--timestamp-expiry", "2",
                               "--lock-wait", "5"])
    repo = open_repository(given)
    assert (repo.timestamp_expiry, repo.lock_wait) == (timedelta(hours=2), 5.0)
    hours = DEFAULT_TIMESTAMP_EXPIRY / timedelta(hours=1)
    assert TIMESTAMP_EXPIRY_HELP.endswith(f"(default {hours:g})")


def test_keys_take_the_keys_modules_root_expiry(tmp_path: Path, capsys) -> None:
    from datetime import datetime, timezone

    from edgeship.edge_pusher.keys import DEFAULT_ROOT_EXPIRY_DAYS, load_root

    assert cli.main(["keys", "init", str(tmp_path / "a")]) == 0
    assert cli.main(["keys", "init", str(tmp_path / "b"), "--root-expiry-days", "30"]) == 0
    now = datetime.now(timezone.utc)
    for folder, days in (("a", DEFAULT_ROOT_EXPIRY_DAYS), ("b", 30)):
        left = load_root(tmp_path / folder).signed.expires - now
        assert timedelta(days=days - 1) < left <= timedelta(days=days), folder


def test_the_publishers_commands_do_not_import_the_fleets() -> None:
    """The fleet's commands use the publisher's helpers; not the other way round (the two
    modules once imported each other to split ``rollout``)."""
    imported = [node.module for node in ast.walk(_tree("edge_pusher/cli.py"))
                if isinstance(node, ast.ImportFrom) and node.module]
    assert not [m for m in imported if m.startswith("edgeship.edge_pusher.fleet")], imported
