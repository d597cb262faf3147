"""Ways in: the command line (and later the REST service)."""
