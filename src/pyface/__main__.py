"""``python -m pyface``: the ``pyface`` command."""

from .cli.main import main

raise SystemExit(main())
