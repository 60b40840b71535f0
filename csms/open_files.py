"""Each connected charger holds a socket, and the usual soft limit on open files (1,024)
would refuse chargers long before the machine runs out of anything: raised at start-up."""

from __future__ import annotations

import resource
from contextlib import suppress

# Linux's default ceiling (fs.nr_open), for a hard limit that says "unlimited".
_UNLIMITED = 1_048_576


def raise_open_files_limit() -> int:
    """Raise the soft limit to the hard one; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED if hard == resource.RLIM_INFINITY else hard
    if soft < target:
        # A kernel ceiling below the hard limit refuses it: the limit stays as it was.
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
