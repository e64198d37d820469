"""Where a system check error points in the project's source, for the check-error page.

Django's check messages name their object: ``catalog.Product.name: (fields.E120) ...`` (a
field), ``catalog.Product: (models.E015) ...`` (a model), ``admin.E108`` on a ModelAdmin class.
The first error whose object is in the project's own code gives the page's focus: the field's
line in its model (or the class's first line), with the source around it and the message.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from django.core import checks

import reloader
from reloader.modules import is_library_file

_FIELD_LINE = r"^\s+{name}\s*[:=]"


def _where(obj: Any) -> tuple[str, int, str] | None:
    """(file, line, name) of a check message's object, when it is the project's code."""
    target, field_name = obj, None
    model = getattr(obj, "model", None)
    if model is not None and hasattr(obj, "attname"):  # a model field
        target, field_name = model, obj.name
    elif not inspect.isclass(obj) and not inspect.isfunction(obj):
        target = type(obj)  # a ModelAdmin instance, say
    try:
        filename = inspect.getsourcefile(target)
        lines, start = inspect.getsourcelines(target)
    except (OSError, TypeError):
        return None
    if not filename or is_library_file(filename):
        return None
    line = start
    if field_name:
        pattern = re.compile(_FIELD_LINE.format(name=re.escape(field_name)))
        for number, text in enumerate(lines, start=start):
            if pattern.match(text):
                line = number
                break
    return filename, line, getattr(target, "__qualname__", str(target))


def focus(messages: list[checks.CheckMessage]) -> dict[str, Any] | None:
    """The page's focus for the first serious message that points into the project."""
    for message in messages:
        if not message.is_serious() or message.is_silenced() or message.obj is None:
            continue
        where = _where(message.obj)
        if where is not None:
            filename, line, name = where
            return reloader.source_focus(filename, line, name, note=str(message))
    return None


def run_for_focus(**kwargs: Any) -> dict[str, Any] | None:
    """Run the checks again for their messages (the command raised SystemCheckError, whose text
    alone is what Django prints) and find the focus; None when anything goes wrong."""
    try:
        return focus(checks.run_checks(app_configs=None, include_deployment_checks=False, **kwargs))
    except Exception:
        return None
