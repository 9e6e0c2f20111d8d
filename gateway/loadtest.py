"""Kept for the old command line; the load benchmark lives in benchmarks/concurrency.py.

    python -m gateway.loadtest --calls 1 2 3 4

is ``python -m benchmarks.concurrency --leak-calls 0 --name loadtest`` (levels only,
results in benchmarks/results/loadtest.*, so a quick run never overwrites the
committed concurrency results). Runs from a source checkout only: ``benchmarks``
is not part of the installed distribution.
"""

from __future__ import annotations

import sys


def main() -> None:
    from benchmarks.concurrency import main as concurrency_main

    # Later flags win in argparse: the caller's own --leak-calls/--name still apply.
    concurrency_main(["--leak-calls", "0", "--name", "loadtest", *sys.argv[1:]])


if __name__ == "__main__":
    main()
