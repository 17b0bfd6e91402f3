"""Calibration of twin parameters against measurements (issue 8: not built yet). Uses `twin`."""
