"""The pure core: no asyncio, no sockets, no clock.

Frames in (text), typed events and verified book state out. Everything with I/O (the feed,
the simulator, the daemon) drives this code; nothing here waits or reads a clock: times are
passed in.
"""
