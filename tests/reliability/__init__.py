"""The reliability suite (issue 14 item 14): a package so that its ``conftest`` is imported as
``reliability.conftest`` and never takes the place of ``tests/conftest.py`` as ``conftest``."""
