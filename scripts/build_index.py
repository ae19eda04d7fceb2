"""Build the retrieval index (index/current) from knowledge/ with the configured model.

Run by `make run` / `make test` with ``--if-stale``: when the index is intact and matches the
knowledge and the model it exits at once, without importing torch. Otherwise it builds
incrementally (only changed texts are embedded); ``--force`` re-embeds everything.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.index import IndexBuildError, build_index, index_status
from bot.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="re-embed every text")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--if-stale", action="store_true", help="do nothing when the index is up to date"
    )
    args = parser.parse_args(argv)
    settings = Settings()
    started = time.perf_counter()
    if args.if_stale and not args.force:
        ok, message = index_status(settings)
        if ok:
            print(f"{message} [checked in {time.perf_counter() - started:.2f} s]")
            return 0
        print(f"index needs a build: {message}", file=sys.stderr)
    try:
        report = build_index(settings, force=args.force, progress=not args.quiet)
    except IndexBuildError as exc:
        print(f"index build failed, previous index left in place:\n{exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
