"""``python -m modelops.localcloud --data-dir DIR --port N``: the local cloud server in the foreground.

``modelops local up`` (and any command that needs the local cloud) starts this as a detached process
through :func:`modelops.localcloud.ensure_running`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.localcloud", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="where the state, images and logs live")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    args = parser.parse_args(argv)
    from modelops.localcloud.server import main

    return main(args.data_dir, args.port)


if __name__ == "__main__":
    sys.exit(_main())
