"""Live bridge: sensor data into a shadow twin (issue 3: not built yet). Uses `twin`."""
