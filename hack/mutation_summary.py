"""Summarise a mutmut run: figures per module and overall, then every surviving mutant.

Reads ``mutmut results --all true`` (one ``name: status`` line per mutant). A survivor's
diff is one ``mutmut show <name>`` away.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict

_LINE = re.compile(r"^\s*(?P<name>\S+?)__mutmut_\d+: (?P<status>[a-z ]+)$")
_STATUSES = ("killed", "survived", "no tests", "timeout", "suspicious", "skipped")


def module_of(function: str) -> str:
    """``quota.limits.x_effective_limits`` or ``quota.decision.xǁDecisionǁallow`` ->
    ``quota.limits`` / ``quota.decision``."""
    head = function.split("ǁ", 1)[0]
    return head.rsplit(".", 1)[0]


def main() -> int:
    mutmut = [sys.executable, "-m", "mutmut"] if len(sys.argv) < 2 else sys.argv[1:]
    out = subprocess.run(
        [*mutmut, "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    for line in out.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        status = match["status"].strip()
        per_module[module_of(match["name"])][status] += 1
        if status in ("survived", "no tests", "timeout", "suspicious"):
            survivors.append(f"{line.strip()}")
    if not per_module:
        print("no mutmut results: run `mutmut run` first", file=sys.stderr)
        return 1
    total: Counter[str] = Counter()
    print(f"{'module':40} {'mutants':>8} " + " ".join(f"{s:>9}" for s in _STATUSES))
    for module in sorted(per_module):
        counts = per_module[module]
        total.update(counts)
        print(
            f"{module:40} {sum(counts.values()):>8} "
            + " ".join(f"{counts[s]:>9}" for s in _STATUSES)
        )
    print(f"{'all':40} {sum(total.values()):>8} " + " ".join(f"{total[s]:>9}" for s in _STATUSES))
    print(f"\n{len(survivors)} not killed (mutmut show NAME for the diff):")
    for survivor in survivors:
        print(f"  {survivor}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
