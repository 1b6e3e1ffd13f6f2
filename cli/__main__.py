"""``python -m cli``: the same as the ``image-registry-webhook`` command."""

import sys

from cli.main import main

sys.exit(main())
