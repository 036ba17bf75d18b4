"""The ``ruckus`` command-line interface: drive a RUCKUS server from scripts and terminals."""
