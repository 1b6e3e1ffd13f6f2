"""``python -m bench [NAME [options]]``: one benchmark with its options, or all of them
with defaults (``make bench``). Each prints its progress on stderr, writes
``bench/results/<name>.json`` (and PNG plots), and returns figures; the table of all
figures, each next to its same-run baseline and target, is printed at the end."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import cachememory, capacity, frontdoor, hotpath, latency, scale, writemix
from bench.machine import describe
from bench.report import RESULTS, Figure, progress, table

Benchmark = Callable[[list[str]], list[Figure]]

BENCHMARKS: dict[str, Benchmark] = {
    "latency": latency.main,
    "hotpath": hotpath.main,
    "capacity": capacity.main,
    "frontdoor": frontdoor.main,
    "writemix": writemix.main,
    "cachememory": cachememory.main,
    # Last: the longest by far (a cluster ten times issue 11's), so a run cut short keeps
    # every other figure.
    "scale": scale.main,
}


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print(f"benchmarks: {', '.join(BENCHMARKS)}; `python -m bench NAME --help` for options")
        return 0
    if argv:
        name, options = argv[0], argv[1:]
        if name not in BENCHMARKS:
            print(
                f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr
            )
            return 2
        selected = [(name, options)]
    else:
        selected = [(name, []) for name in BENCHMARKS]
    figures: list[Figure] = []
    for name, options in selected:
        progress(f"== {name}")
        figures.extend(BENCHMARKS[name](options))
    print(f"\nmachine: {describe()}")
    print(table(figures))
    missed = [f for f in figures if f.met is False]
    print(f"\nresults and plots: {RESULTS}/; {len(missed)} target(s) missed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
