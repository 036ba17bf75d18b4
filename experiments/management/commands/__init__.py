"""Management commands: run_scheduler, demo."""
