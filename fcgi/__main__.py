"""``python -m fcgi module:app [options]``: see :mod:`fcgi.cli`."""

from fcgi.cli import main

raise SystemExit(main())
