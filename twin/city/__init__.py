"""The city every layer lives in: streets, terrain, blocks, one CRS."""
