"""The nightly run's stages, one module each, in run order."""
