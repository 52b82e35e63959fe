"""The core layer every package may import: models, io, stages, executors, the text and pixel paths."""
