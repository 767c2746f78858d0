"""Escalation comment templates: str.format placeholders from a fixed list, checked at load time."""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter

PLACEHOLDERS = ("ticket", "metric", "level", "priority", "target", "deadline", "elapsed", "remaining")


def check_template(template: str, where: str) -> None:
    """Raise ValueError if `template` uses a placeholder we do not fill, or is malformed."""
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as exc:
        msg = f"{where}: {template!r} is not a valid template ({exc}); write {{{{ for a brace"
        raise ValueError(msg) from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            raise ValueError(
                f"{where}: unknown placeholder {{{name}}} in {template!r}; "
                f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            )
        if spec or conversion:
            raise ValueError(f"{where}: placeholder {{{name}}} takes no format spec or conversion")


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill a template that passed `check_template`."""
    return template.format_map(values)
