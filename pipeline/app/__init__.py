"""The application layer: the CLI, the demo, the nightly run and the query service."""
