"""``python -m pyface``: the ``pyface`` command."""

from .cli import main

raise SystemExit(main())
