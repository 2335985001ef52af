"""Exceptions raised on purpose by Spectral Atlas.

Every error a user can cause derives from :class:`AtlasError`, so a caller (the
console script, the dashboard) can tell "your input is wrong" from "this is a
bug" with one ``except`` clause.
"""

from __future__ import annotations


class AtlasError(Exception):
    """Root of every exception raised on purpose."""


class ParameterError(AtlasError, ValueError):
    """An argument is malformed or out of range."""


class FormatError(AtlasError, ValueError):
    """A file exists but is not audio (or not a store) this package can read."""


class SourceNotFoundError(AtlasError, FileNotFoundError):
    """A named input file, directory or store does not exist."""


class StoreExistsError(AtlasError, FileExistsError):
    """The output store already exists and overwriting was not asked for."""
