"""A proposed policy file (`sla-connector simulate --policies FILE`), validated like the configuration.

The file is YAML (or JSON) with the configuration's `policies` list and, optionally, `calendars`:
calendars it names are added to the configuration's, and one it names like a configured calendar
replaces that one for the proposed side (a what-if on service hours). Other top-level keys are
ignored, so a whole configuration file can be proposed as it is.

Validation is the configuration's own: the configuration's data with these two sections put in is
built by `config_from_dict` (same schema, same policy checks, same calendars and notice channels),
so an error reads exactly as it would in the configuration, named by this file:
`proposed.yaml: policies[0].metrics.resolution.targets.high: '4x' is not a duration like ...`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from connector.config.loader import ConfigError, config_from_dict, read_yaml

if TYPE_CHECKING:
    from sla.calendar import BusinessCalendar
    from sla.policy import PolicySet

SHAPE = "a mapping with `policies` (a list, as in the configuration) and optionally `calendars`"


def load_proposed(
    path: str | os.PathLike[str], config_path: str | os.PathLike[str], env: Mapping[str, str]
) -> tuple[PolicySet, Mapping[str, BusinessCalendar]]:
    """The proposed policies and the calendars they use; ConfigError naming `path` when invalid.

    `config_path` is the configuration file (already loaded and valid): its other sections are what
    the proposed policies are checked against."""
    source = os.fspath(path)
    data = read_yaml(source)
    if not isinstance(data, Mapping) or "policies" not in data:
        found = "nothing" if data is None else f"a {type(data).__name__}"
        raise ConfigError(source, "", f"expected {SHAPE}, found {found}")
    if not isinstance(data["policies"], list):
        raise ConfigError(
            source, "policies", f"expected a list of policies, found {type(data['policies']).__name__}"
        )
    calendars = {} if data.get("calendars") is None else data["calendars"]
    if not isinstance(calendars, Mapping):
        raise ConfigError(
            source, "calendars", f"expected a mapping of calendars, found {type(calendars).__name__}"
        )
    base = read_yaml(os.fspath(config_path))
    configured = base.get("calendars") or {}
    merged = {**base, "policies": data["policies"], "calendars": {**configured, **calendars}}
    config = config_from_dict(merged, env, source)
    return config.policies, config.calendars
