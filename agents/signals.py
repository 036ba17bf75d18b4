"""Signals the agents app sends to the apps above it (which it must not import).

``heartbeat_received(sender=Agent, agent=Agent, heartbeat=Heartbeat)`` is sent inside the heartbeat's
transaction, after the agent's row is updated; the scheduler uses it to take back an attempt it had given up
while the agent was silent.
"""

from __future__ import annotations

from django.dispatch import Signal

#: Sent for every heartbeat the server records.
heartbeat_received = Signal()
