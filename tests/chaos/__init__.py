"""Chaos, crash-point and hostile-input suites over the real local stack (moto server + GoPro simulator)."""
