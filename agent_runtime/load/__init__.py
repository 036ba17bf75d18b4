"""Serving under load on the agent: the arrival schedule and the streaming load generator of a sweep's points."""
