"""Serve any WSGI app over FastCGI, SCGI or AJP on flup 1.0.3, behind nginx, with flup's
defects fixed (prefork spawning and recycling, signals, threads, big bodies, client resets,
sockets, malformed records, SCRIPT_NAME/PATH_INFO).

>>> from fcgi import Options, serve
>>> serve(application, Options.parse(["socket=/run/mysite/fcgi.sock", "umask=007"]))

``python -m fcgi module:app [key=value ...]`` does the same from a shell; ``manage.py runfcgi``
is Django's spelling. Everything not listed in ``__all__`` is private.
"""

from .options import OptionError, Options
from .server import serve

__all__ = ["OptionError", "Options", "serve"]
