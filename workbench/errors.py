"""The one base class for mistakes a user can fix (bad input, bad parameters, a full disk).

The ``workbench`` command prints these as one line (what, where, what to do) and exits 1;
anything else is a bug and keeps its traceback. Each layer's own error class (ManifestError,
TrainingError, ...) derives from ``WorkbenchError`` as well as from the builtin it has always
been, so existing ``except ValueError`` callers keep working.

Deprecations end: each one names the version that removes it, in :data:`DEPRECATIONS` (filled
by :func:`deprecated` and :func:`renamed_keywords`), and ``tests/test_deprecations.py`` fails
once ``workbench.__version__`` reaches any of them, so the shim is removed then, not forgotten.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class WorkbenchError(Exception):
    """A user-fixable problem; the message alone must tell the user what to do."""


class DiskFullError(WorkbenchError, OSError):
    """Not enough free space to write a file; the message names the path and the bytes needed."""


class WriteError(WorkbenchError, OSError):
    """Writing a file failed for a reason of the machine, not of the data (the file size limit of
    ``ulimit -f``, a read-only filesystem, an I/O error); the message names the path."""


#: Every deprecation still in the code: what is deprecated -> the version that removes it.
DEPRECATIONS: dict[str, str] = {}


def deprecated(what: str, version: str) -> str:
    """Register ``what`` (an old name, or an old form of a stored file that is still read) as
    removed in ``version``; returns ``what``. Call it at import time beside the shim."""
    if not all(part.isdigit() for part in version.split(".")):
        raise ValueError(f"deprecated({what!r}): version {version!r} is not like '0.3'")
    DEPRECATIONS[what] = version
    return what


def renamed_keywords(*, version: str, **renames: str) -> Callable[[F], F]:
    """Decorator: ``func`` still accepts the keyword arguments it had before a rename
    (``old="new"`` pairs) until ``version`` removes them, with a one-line
    :class:`DeprecationWarning` naming the new one. Giving both names is a TypeError.

    >>> @renamed_keywords(version="9.0", setting="recipe")
    ... def train(model: str, recipe: str = "demo") -> str:
    ...     return f"{model}/{recipe}"
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     train("mcsan", setting="smoke")
    'mcsan/smoke'
    >>> str(caught[0].message)
    'train(setting=...) is deprecated and goes in version 9.0; use recipe=...'
    >>> DEPRECATIONS.pop("train(setting=)")
    '9.0'
    """

    def decorate(func: F) -> F:
        name = func.__qualname__.replace(".__init__", "")
        for old in renames:
            deprecated(f"{name}({old}=)", version)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{name}() got both {old}= (deprecated) and {new}=; give only {new}=")
                    # stacklevel 2: the warning points at the caller's line, which is what to edit
                    warnings.warn(f"{name}({old}=...) is deprecated and goes in version {version}; use {new}=...",
                                  DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
