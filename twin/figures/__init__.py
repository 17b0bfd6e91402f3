"""Figures for reports, one module per layer plus the shared pieces (common)."""
