"""The coarchive query service: an HTTP API and web page over a data root."""
