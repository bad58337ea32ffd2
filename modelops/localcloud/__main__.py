"""``python -m modelops.localcloud --data-dir DIR --port N``: the local cloud server in the foreground.

``modelops local up`` (and any command that needs the local cloud) starts this as a detached process
through :func:`modelops.localcloud.ensure_running`; ``--timing aws --time-scale 0.05`` gives the
service's phases SageMaker's lengths, scaled (see ``modelops.localcloud.timing``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.localcloud", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="where the state, images and logs live")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--timing", default="fast", help="how long the service's phases take: fast, or aws")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiplies the timing profile's durations")
    args = parser.parse_args(argv)
    from modelops.localcloud.server import main
    from modelops.localcloud.timing import timing

    try:
        chosen = timing(args.timing, args.time_scale)
    except ValueError as exc:
        parser.error(str(exc))
    return main(args.data_dir, args.port, chosen)


if __name__ == "__main__":
    code = _main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # the log's disk is full: the exit status says why (lifecycle reads it), not Python's 120
        os._exit(code)
    sys.exit(code)
