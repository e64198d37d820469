"""The files a process imported: what a worker reports so that the supervisor watches them."""

from __future__ import annotations

import functools
import os
import site
import sys
import sysconfig
import zipimport
from collections.abc import Iterable
from types import ModuleType

# Never preloaded by a fork template: the entry points of this process and our own package.
_NEVER_PRELOAD = ("__main__", "__mp_main__", "reloader")


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


@functools.lru_cache(maxsize=1)
def library_roots() -> tuple[str, ...]:
    """Where the standard library and installed packages live for this interpreter."""
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots.update(site.getsitepackages())
    user_site = site.getusersitepackages()
    if isinstance(user_site, str):
        roots.add(user_site)
    return tuple(sorted({os.path.realpath(r) + os.sep for r in roots if r}))


@functools.lru_cache(maxsize=8192)
def is_library_file(path: str) -> bool:
    """A file of the standard library or of an installed package (not the project's code; an
    editable install counts as project code, since it is edited like it)."""
    roots = library_roots()
    # realpath() stats every component: only when the plain path does not already tell.
    return path.startswith(roots) or os.path.realpath(path).startswith(roots)


@functools.lru_cache(maxsize=1)
def stdlib_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib") if key in paths}
    return tuple(sorted({os.path.realpath(r) + os.sep for r in roots if r}))


@functools.lru_cache(maxsize=8192)
def stdlib_file(path: str) -> bool:
    """A file of the standard library itself (not of a package installed beside it)."""
    if f"{os.sep}site-packages{os.sep}" in path or f"{os.sep}dist-packages{os.sep}" in path:
        return False
    return path.startswith(stdlib_roots()) or os.path.realpath(path).startswith(stdlib_roots())


def library_modules(
    modules: Iterable[tuple[str, ModuleType]] | None = None, trusted: Iterable[str] = ()
) -> list[str]:
    """Names of loaded library modules, in import order: what a fork template may preload.
    Modules of the ``trusted`` packages count wherever they are (an editable install someone
    vouched for)."""
    if modules is None:
        modules = list(sys.modules.items())
    vouched = set(trusted)
    names = []
    for name, module in modules:
        top = name.split(".")[0]
        if not isinstance(module, ModuleType) or top in _NEVER_PRELOAD:
            continue
        path = module_file(module)
        if path is not None and (top in vouched or is_library_file(path)):
            names.append(name)
    return names
