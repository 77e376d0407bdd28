"""krakenstream: exact, checksum-verified Kraken order books."""

__version__ = "0.1.0"
