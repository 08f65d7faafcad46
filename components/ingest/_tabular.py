"""Tabular CSV rows to items: one feature per column, float or string, empty cells missing."""

from __future__ import annotations

from edgeship.components.ingest._csv import BadValue, Record, check_width, parse_float
from edgeship.components.ingest._rows import BadRow, Item
from edgeship.components.ingest._tfexample import FeatureValue


def parse_row(
    record: Record, header: list[str], types: dict[str, str], label: str
) -> Item | BadRow:
    """The row as (split key, class, features), or why it is malformed.

    The split key is the row's content, so duplicated rows always land in the same split and
    cannot inflate eval accuracy by being memorised from train.
    """
    try:
        check_width(record, len(header))
        features: dict[str, FeatureValue] = {}
        class_name = ""
        for name, text in zip(header, record.fields, strict=True):
            if name == label:
                class_name = text.strip()
                if not class_name:
                    raise BadValue(f"missing label in column '{label}'")
            elif types[name] == "float":
                try:
                    value = parse_float(text)
                except BadValue as err:
                    raise BadValue(f"column '{name}': {err}") from None
                features[name] = None if value is None else [value]
            else:
                features[name] = text.strip() or None
    except BadValue as err:
        return BadRow(record.source, record.line, str(err))
    return "\x1f".join(record.fields), class_name, features
