"""The daemon: the orderbook, analysis and gateway roles, wired together or apart."""
