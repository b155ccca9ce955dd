"""The embedded sandbox: a fake "legacy AWS account" served by moto on 127.0.0.1.

:mod:`migrate.sandbox.server` runs moto in server mode inside this process and offers its
moto-api helpers (reset, request recording); :mod:`migrate.sandbox.seed` fills it with the legacy
account that ``migrate demo`` and ``migrate sandbox serve`` migrate. See ``docs/sandbox.md``.
"""
