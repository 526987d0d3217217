"""The one base class for mistakes a user can fix (bad input, bad parameters, a full disk).

The ``workbench`` command prints these as one line (what, where, what to do) and exits 1;
anything else is a bug and keeps its traceback. Each layer's own error class (ManifestError,
TrainingError, ...) derives from ``WorkbenchError`` as well as from the builtin it has always
been, so existing ``except ValueError`` callers keep working. :func:`renamed_keywords` keeps
old keyword names of renamed parameters working (with a DeprecationWarning).
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


def renamed_keywords(**renames: str) -> Callable[[F], F]:
    """Decorator: ``func`` still accepts the keyword arguments it had before a rename
    (``old="new"`` pairs), with a one-line :class:`DeprecationWarning` naming the new one, so
    user code written against the old names keeps working. Giving both names is a TypeError.

    >>> @renamed_keywords(preset="recipe")
    ... def train(model: str, recipe: str = "demo") -> str:
    ...     return f"{model}/{recipe}"
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     train("mcsan", preset="smoke")
    'mcsan/smoke'
    >>> str(caught[0].message)
    'train(preset=...) is deprecated; use recipe=...'
    """

    def decorate(func: F) -> F:
        name = func.__qualname__.replace(".__init__", "")

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{name}() got both {old}= (deprecated) and {new}=; give only {new}=")
                    # stacklevel 2: the warning points at the caller's line, which is what to edit
                    warnings.warn(f"{name}({old}=...) is deprecated; use {new}=...", DeprecationWarning,
                                  stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
