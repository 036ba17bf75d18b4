"""Tests of the test infrastructure for network faults: the namespace lab and the controllable Postgres."""
