"""The pool stages: ingest, embed, index and query an image pool."""
