"""The scheduler: dispatch, agent callbacks, recovery (loss, leases, pull fallback) and retry policy.

It sits above the apps it writes to (``agents``, ``experiments``, ``results``) so that none of them imports it.
"""
