"""The docs' TFX snippets import what exists, in TFX's environment."""

from __future__ import annotations

from tests.infra.test_docs import imports


def test_every_tfx_import_in_the_docs_exists() -> None:
    statements = imports(tfx=True)
    assert len(statements) >= 6  # one per step README at least
    for name, statement in statements:
        try:
            exec(statement, {})  # noqa: S102 - the docs' own import lines
        except ImportError as e:
            raise AssertionError(f"{name}: {statement}: {e}") from None
