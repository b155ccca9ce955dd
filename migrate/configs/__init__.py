"""Per-format parsing and reversible rewriting of config files that hold credentials.

One module per format (``tomcat``, ``properties``, ``envfile``, ``yamlfile``, ``jsonfile``,
``inifile``), each with ``parse(text) -> list[Entry]`` and ``rewrite(text, moves, style,
placeholder) -> str``; ``classify`` says what is a credential (with ``detectors``, detect-secrets'
plugins applied to decoded values), ``scan`` groups credentials into secrets, ``textio`` keeps bytes
exact on disk.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from migrate.configs import (
    envfile,
    inifile,
    jsonfile,
    mycnf,
    netrc,
    pgpass,
    properties,
    tomcat,
    yamlfile,
)

FORMATS: dict[str, ModuleType] = {
    "xml": tomcat,
    "properties": properties,
    "env": envfile,
    "yaml": yamlfile,
    "json": jsonfile,
    "ini": inifile,
    "pgpass": pgpass,
    "netrc": netrc,
    "mycnf": mycnf,
}


def detect_format(path: Path) -> str | None:
    """The format of a config file from its name, or None when it is not one we read."""
    name = path.name.lower()
    if name in (".pgpass", "pgpass.conf"):
        return "pgpass"
    if name in (".netrc", "_netrc"):
        return "netrc"
    if name.endswith(".xml"):
        return "xml"
    if name.endswith(".properties"):
        return "properties"
    if name == ".env" or name.startswith(".env.") or name.endswith(".env"):
        return "env"
    if name.endswith((".yml", ".yaml")):
        return "yaml"
    if name.endswith(".json"):
        return "json"
    if name.endswith(".cnf"):
        return "mycnf"  # MySQL option files: MySQL's quoting rules, not configparser's
    if name.endswith((".ini", ".cfg")):
        return "ini"
    return None
