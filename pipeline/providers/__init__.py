"""Media sources behind one contract (`base.CloudProvider`), looked up by name in `registry`."""
