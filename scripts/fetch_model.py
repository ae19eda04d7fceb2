"""Make sure the embedding model directory exists (download or convert it); print where it is.

Run by `make run` / `make test` on every invocation, so it returns in a fraction of a second
when the model is already there. ``--force`` rebuilds it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.model.cache import ModelFetchError
from bot.model.fetch import fetch_model
from bot.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        path = fetch_model(Settings(), force=args.force)
    except ModelFetchError as exc:
        print(f"fetch_model: {exc}", file=sys.stderr)
        return 1
    print(f"model ready: {path} ({time.perf_counter() - started:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
