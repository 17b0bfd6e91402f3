"""Errors about the user's input files that the command line reports as bad input (exit 2).

Kept apart from the layers so that reporting them needs no heavy import.
"""

from __future__ import annotations


class BadInput(ValueError):
    """Any input the user gave that cannot be used: the message names what and where.

    The command line turns it into exit status 2. Packages beside ``twin``
    (live_bridge, calibration) derive their own input errors from it.
    """


class InpError(BadInput):
    """A missing or malformed network input file (EPANET .inp and the like)."""
