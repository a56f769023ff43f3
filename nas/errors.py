"""Typed errors. Everything a user can cause raises a `NasError` subclass.

Messages follow "expected / got / what to do" so that the CLI can print them as one line.
"""

from __future__ import annotations


class NasError(Exception):
    """Base class of errors caused by user input or artifacts; the CLI exits with code 2."""


class ConfigError(NasError):
    """A bad option value, config file or unknown config key."""


class InvalidArchError(NasError):
    """A subnet config that does not belong to the search space."""


class DatasetError(NasError):
    """A dataset that is missing or does not have the expected layout."""


class ArtifactError(NasError):
    """A run folder or artifact that is missing or unreadable."""


class IncompatibleArtifactError(ArtifactError):
    """An artifact made for another space, encoding version or format."""


class DeviceError(NasError):
    """A device that is unknown or unavailable on this machine."""


class BusyError(NasError):
    """A run stage that another living process is writing (see `nas.locks`)."""


class WriteError(NasError):
    """A file that could not be written: disk full, read-only or no permission.

    Writes are atomic, so the message can say what was kept (the previous version of the
    file, or the earlier lines of a log).
    """


def closest_hint(name: str, valid: list[str] | tuple[str, ...]) -> str:
    """Return ", did you mean 'x'?" for the closest valid name, or "" when none is close."""
    import difflib

    matches = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f"; did you mean '{matches[0]}'?" if matches else ""
