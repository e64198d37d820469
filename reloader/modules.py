"""The files a process imported: what a worker reports so that the supervisor watches them."""

from __future__ import annotations

import os
import sys
import zipimport
from collections.abc import Iterable
from types import ModuleType


def module_file(module: ModuleType) -> str | None:
    """The file a module was loaded from: its source, its extension, or its zip archive."""
    spec = getattr(module, "__spec__", None)
    if spec is None:
        path = getattr(module, "__file__", None)
    elif isinstance(getattr(spec, "loader", None), zipimport.zipimporter):
        path = spec.loader.archive
    elif spec.has_location:
        path = spec.origin
    else:
        path = None
    if not isinstance(path, str):
        return None
    if path.endswith((".pyc", ".pyo")):
        source = path[:-1]
        path = source if os.path.exists(source) else path
    return os.path.abspath(path)


def module_files(modules: Iterable[ModuleType] | None = None) -> set[str]:
    """Files of every loaded module that has one."""
    if modules is None:
        modules = list(sys.modules.values())
    files = set()
    for module in modules:
        if not isinstance(module, ModuleType):
            continue
        path = module_file(module)
        if path is not None:
            files.add(path)
    return files


def exception_files(exc: BaseException) -> set[str]:
    """Files named by an exception and its chain: the frames of the tracebacks, and the file of
    a SyntaxError (a module that failed to compile is not in ``sys.modules``)."""
    files: set[str] = set()
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, SyntaxError) and current.filename:
            files.add(os.path.abspath(current.filename))
        tb = current.__traceback__
        while tb is not None:
            files.add(os.path.abspath(tb.tb_frame.f_code.co_filename))
            tb = tb.tb_next
        pending += [current.__cause__, current.__context__]
    return {f for f in files if os.path.isfile(f)}
