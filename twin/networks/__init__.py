"""Network layers: each module holds one layer that fulfils :class:`twin.networks.base.Layer`."""
