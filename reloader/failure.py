"""What the error page shows of an exception: where to fix it first, then the frames.

Built where the exception was raised (the worker, which has the traceback and the source), sent
with the ``failed`` message (``reloader.protocol``) and rendered by ``reloader.errorpage``:

``focus``
    where the developer must look first: the file and line of a SyntaxError in the program's own
    code (with the caret's columns), else the deepest frame of the program's own code in the
    traceback (or in the exception it was raised from), else null. With the source lines
    around it: ``{"file", "line", "function", "offset", "end_offset", "first", "source",
    "note"}`` (``note``: what is wrong there, when the title does not say it: a check message).
``frames``
    the traceback, outermost first: ``{"file", "line", "function", "code", "kind"}`` where
    ``kind`` is ``project`` (the program's own code, editable installs included), ``library``
    (the standard library, site-packages) or ``machinery`` (frozen importlib frames); the page
    folds the last two.
"""

from __future__ import annotations

import linecache
import os
import traceback
from types import TracebackType
from typing import Any

from .modules import is_library_file

CONTEXT = 5  # source lines shown on each side of the focus

# The tool's own code counts as library code wherever it is installed (an editable install of
# it is still not the program the developer is fixing); ``add_library_code`` adds more.
_LIBRARY_DIRS: list[str] = [os.path.dirname(os.path.abspath(__file__)) + os.sep]


def add_library_code(directory: str) -> None:
    """Show the frames of files under ``directory`` as library frames (folded)."""
    path = os.path.abspath(directory) + os.sep
    if path not in _LIBRARY_DIRS:
        _LIBRARY_DIRS.append(path)


MAX_FRAMES = 200
MAX_LINE = 400


def kind_of(filename: str) -> str:
    if filename.startswith("<frozen") or filename.startswith("<"):
        return "machinery"
    path = os.path.abspath(filename)
    if path.startswith(tuple(_LIBRARY_DIRS)) or is_library_file(path):
        return "library"
    return "project"


def frames(tb: TracebackType | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for summary in traceback.extract_tb(tb)[-MAX_FRAMES:]:
        out.append(
            {
                "file": summary.filename,
                "line": summary.lineno or 0,
                "function": summary.name,
                "code": (summary.line or "")[:MAX_LINE],
                "kind": kind_of(summary.filename),
            }
        )
    return out


def source_around(filename: str, line: int, context: int = CONTEXT) -> tuple[int, list[str]]:
    """(first line number, the lines from there) around ``line`` of ``filename``."""
    lines = linecache.getlines(filename)
    if not lines:
        return line, []
    first = max(1, line - context)
    last = min(len(lines), line + context)
    return first, [text.rstrip("\n")[:MAX_LINE] for text in lines[first - 1 : last]]


def focus_at(
    filename: str,
    line: int,
    function: str | None = None,
    offset: int | None = None,
    end_offset: int | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Where to look: ``line`` of ``filename`` with the source around it (``offset`` and
    ``end_offset``: the columns to underline, 1-based; ``note``: what is wrong there)."""
    linecache.checkcache(filename)  # the file may have changed since it was imported
    first, source = source_around(filename, line)
    return {
        "file": os.path.abspath(filename),
        "line": line,
        "function": function,
        "offset": offset,
        "end_offset": end_offset,
        "first": first,
        "source": source,
        "note": note,
    }


def _focus_of(exc: BaseException, tb_frames: list[dict[str, Any]]) -> dict[str, Any] | None:
    if (
        isinstance(exc, SyntaxError)
        and exc.filename
        and exc.lineno
        and kind_of(exc.filename) == "project"
        and os.path.isfile(exc.filename)
    ):
        return focus_at(exc.filename, exc.lineno, None, exc.offset, exc.end_offset)
    for frame in reversed(tb_frames):
        if frame["kind"] == "project" and os.path.isfile(frame["file"]):
            return focus_at(frame["file"], frame["line"], frame["function"])
    return None


def describe(exc: BaseException, tb: TracebackType | None = None) -> dict[str, Any]:
    """``{"focus": ..., "frames": ...}`` for ``exc`` (``tb``: its traceback, trimmed of the
    caller's own frames; ``exc.__traceback__`` by default)."""
    tb_frames = frames(exc.__traceback__ if tb is None else tb)
    focus = _focus_of(exc, tb_frames)
    seen = {id(exc)}
    current: BaseException | None = exc
    while focus is None and current is not None:  # the exception it was raised from
        current = current.__cause__ or current.__context__
        if current is None or id(current) in seen:
            break
        seen.add(id(current))
        focus = _focus_of(current, frames(current.__traceback__))
    return {"focus": focus, "frames": tb_frames}
