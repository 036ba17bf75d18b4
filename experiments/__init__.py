"""Experiments app: experiments, jobs, attempts, their state machines, expansion and scheduling services."""
