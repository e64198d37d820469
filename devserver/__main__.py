"""``python -m devserver runserver [args...]``: see devserver.entry."""

import sys

from devserver.entry import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
