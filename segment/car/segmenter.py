"""The `car` segmenter (registered on import)."""
