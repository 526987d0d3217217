"""The one base class for mistakes a user can fix (bad input, bad parameters, a full disk).

The ``workbench`` command prints these as one line (what, where, what to do) and exits 1;
anything else is a bug and keeps its traceback. Each layer's own error class (ManifestError,
TrainingError, ...) derives from ``WorkbenchError`` as well as from the builtin it has always
been, so existing ``except ValueError`` callers keep working.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """A user-fixable problem; the message alone must tell the user what to do."""


class DiskFullError(WorkbenchError, OSError):
    """Not enough free space to write a file; the message names the path and the bytes needed."""
