"""The lowest Django app: the transition log, the websocket event plumbing and the schema of Pydantic shapes.

It imports no other app of the project. The other apps write their transitions and announce their changes
through it, so that none of them needs to import an app above it (see ``docs/architecture.md``).
"""
