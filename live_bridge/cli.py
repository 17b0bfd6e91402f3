"""The live bridge's commands inside ``twin`` (registered through an entry point).

Each group of commands lives in its own module; this one only gathers them.
"""

from __future__ import annotations


def register(sub) -> None:
    from live_bridge import commands_bridge, commands_leaks, commands_whatif

    commands_leaks.register(sub)
    commands_bridge.register(sub)
    commands_whatif.register(sub)
