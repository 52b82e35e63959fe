"""The `zegclip` segmenter (registered on import)."""
