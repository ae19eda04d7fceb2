"""Build the retrieval index (index/current) from knowledge/ with the configured model.

The same as ``contract-bot index build``. Run by `make run` / `make test` with ``--if-stale``:
when the index is intact and matches the knowledge and the model it exits at once, without
importing torch. Otherwise it builds incrementally (only changed texts are embedded); a failed
build leaves the previous index serving. ``--force`` re-embeds everything.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    return cli_main(["index", "build", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
