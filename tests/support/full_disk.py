"""A full disk for this process only: RLIMIT_FSIZE, a real kernel refusal."""

from __future__ import annotations

import resource
import signal


def limit_file_size(max_bytes: int | None) -> None:
    """From now on this process may not grow a file past ``max_bytes`` (None: no limit again).
    A write that would cross the limit writes what fits (a short write); the next fails with
    EFBIG, as on a full disk. SIGXFSZ is ignored so the write fails instead of the process being
    killed; an ignored signal stays ignored across exec (``preexec_fn``)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft = resource.RLIM_INFINITY if max_bytes is None else max_bytes
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, resource.RLIM_INFINITY))
