"""Argument parsing shared by the sub-commands: a bad flag is a one-line user error (exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from sim.errors import UserError


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`UserError`, printed by ``purgatory`` as one line."""

    def error(self, message: str) -> None:
        raise UserError(message)


def positive_int(name: str) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers >= 1; the error names the flag and the bad value."""

    def conv(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} = {text!r}: must be a positive integer") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} = {value}: must be >= 1")
        return value

    return conv
