"""L4: the ``lanner`` command line. Parses arguments, loads config, calls the public API; no logic."""
