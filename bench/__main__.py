"""``python -m bench [NAME [options]]``: one benchmark with its options, or all with defaults."""

from __future__ import annotations

import sys

from bench import pull_secrets, webhook_latency

BENCHMARKS = {"pull-secrets": pull_secrets.main, "webhook": webhook_latency.main}


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
    for name, options in selected:
        print(f"== {name}", flush=True)
        BENCHMARKS[name](options)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
