"""The one base class of the errors this package raises for a person to read."""

from __future__ import annotations


class VitposeError(Exception):
    """An error whose message is meant for the user: ``one_line()`` is what a face shows."""

    def one_line(self) -> str:
        return one_line(self)


class UserError(VitposeError):
    """A problem the user can fix in what they asked for (an argument, a path); printed as one line."""


def one_line(error: BaseException, *, with_type: bool = False) -> str:
    """The first line of ``error``'s message (its type's name when it has none); ``with_type``
    puts the type's name first, for errors that are not ours."""
    text = str(error).strip().splitlines()
    if not text:
        return type(error).__name__
    return f"{type(error).__name__}: {text[0]}" if with_type else text[0]


def os_reason(error: BaseException) -> str:
    """An OS or FFmpeg error as the lower-case tail of a one-line message (``"no such file or
    directory"``); its type's name when it has no message."""
    reason = getattr(error, "strerror", None) or str(error)
    return reason[0].lower() + reason[1:] if reason else type(error).__name__
