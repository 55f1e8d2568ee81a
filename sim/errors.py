"""User-facing errors: one line naming the place, the bad value and what is allowed; exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from a user (scenario file, sweep spec, CLI flag); the CLI prints it and exits 2."""

    exit_code = 2


class ScenarioError(UserError):
    """A scenario file is invalid: ``<file>: <key> = <value>: <what is allowed>``."""

    def __init__(self, source: str, key: str, value: object, allowed: str):
        self.source, self.key, self.value, self.allowed = source, key, value, allowed
        super().__init__(f"{source}: {key} = {value!r}: {allowed}")

    def __reduce__(self):  # picklable, so a worker process (pool or Dask) can hand it back intact
        return type(self), (self.source, self.key, self.value, self.allowed)
