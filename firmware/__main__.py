"""``python -m firmware``: the daemon (the ``switchboard`` console script)."""

from firmware.runtime.daemon import main

raise SystemExit(main())
