"""Commands of the network layers, one module per layer, each with ``register(subparsers)``.

:func:`twin.cli.build_parser` adds every module found here; a command's module imports
its layer lazily (inside the handler), so ``twin --help`` stays fast.
"""
