"""urban-twin: the simulation core of a city digital twin.

The public entry points are :class:`twin.twin.Twin` (one city on one clock),
:func:`twin.run.run` (a validated scenario in, results out) and the ``twin``
command (:mod:`twin.cli`). Importing this package changes no global state.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
