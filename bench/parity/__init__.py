"""Parity checks of the segmenters against their official implementations (one script per method)."""
