"""``python -m qwen_embed_adapters.cli``: the same as the ``qwen-embed`` console script."""

import sys

from . import main

sys.exit(main())
