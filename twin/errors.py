"""Errors about the user's input files that the command line reports as bad input (exit 2).

Kept apart from the layers so that reporting them needs no heavy import.
"""

from __future__ import annotations


class InpError(ValueError):
    """A missing or malformed network input file (EPANET .inp and the like)."""
