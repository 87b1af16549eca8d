"""``python -m firmware``: the daemon (the ``switchboard`` console script)."""

from firmware.app import main

raise SystemExit(main())
