"""Write docs/configuration.md from the command's parser (``python hack/gen_config_docs.py``).

tests/unit/cli/test_reference.py fails while the file differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.main import build_parser  # noqa: E402
from cli.reference import render  # noqa: E402

if __name__ == "__main__":
    target = ROOT / "docs" / "configuration.md"
    target.write_text(render(build_parser()))
    print(f"wrote {target.relative_to(ROOT)}")
