"""``python -m krakenstream`` is ``kms`` (the daemon starts itself this way)."""

from .cli import main

main()
