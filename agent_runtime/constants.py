"""Tuning constants of the agent, named in one place.

Intervals, timeouts and backoff bounds live here so that an operator reading the code finds every knob
at once; the ones an operator may want to change per deployment are also :mod:`agent_runtime.settings`
fields whose defaults come from this module.
"""

from __future__ import annotations

#: Seconds between two heartbeats (DESIGN section 3, flow 2).
HEARTBEAT_INTERVAL_S = 5.0
#: Seconds between two capability re-detections (a changed hash is pushed to the server).
CAPABILITIES_REFRESH_S = 300.0
#: Seconds between checks of the inference servers on the agent's host (cheap: three loopback requests each).
SERVER_CHECK_INTERVAL_S = 15.0
#: How long a pull agent asks the server to hold its work request when there is nothing for it (the server
#: caps it with its own ``RUCKUS_PULL_WAIT_S``); short enough for proxies' idle timeouts (often 30-60 s).
PULL_WAIT_S = 25.0
#: Timeout of the call back to the server while a registration waits for the answer: shorter than the server's own
#: wait for the agent (``RUCKUS_AGENT_HTTP_TIMEOUT_S``, 10 s by default), so that the operator sees the agent's
#: reason ("could not reach the server at ...") instead of the server's timeout.
REACH_TIMEOUT_S = 5.0
#: Timeout of one agent -> server HTTP call.
SERVER_REQUEST_TIMEOUT_S = 10.0
#: First retry delay of the outbox and of self-announce, doubled on every failure.
BACKOFF_INITIAL_S = 1.0
#: Upper bound of the retry delay (before jitter).
BACKOFF_MAX_S = 60.0
#: Up to this many random seconds added to each retry delay (spreads agents that lost the server together).
BACKOFF_JITTER_S = 2.0
#: Seconds between two scans of the outbox for results to deliver when nothing wakes it earlier.
OUTBOX_SCAN_INTERVAL_S = 5.0
#: Minimum seconds between two progress posts of the same job (progress is coalesced, latest wins).
PROGRESS_MIN_INTERVAL_S = 0.5
#: Default seconds between two samples of the telemetry sampler thread (RSS, CPU, GPU signals); the
#: agent setting ``telemetry_interval_s`` overrides it. Half a second resolves load phases of a run
#: while keeping the sampler's cost (a few syscalls and NVML reads) far below 0.1% of a core.
TELEMETRY_INTERVAL_S = 0.5
#: Seconds to wait for the job worker thread to notice a cancel when the agent shuts down.
SHUTDOWN_JOB_GRACE_S = 10.0
#: Seconds to wait for a generation thread to finish after its streamer is drained.
GENERATION_JOIN_TIMEOUT_S = 30.0
#: Default per-request timeout of the Wikipedia REST API client.
WIKIPEDIA_TIMEOUT_S = 20.0
#: User agent sent to Wikipedia (their API policy asks for one that identifies the client).
WIKIPEDIA_USER_AGENT = "ruckus-agent (benchmark; https://github.com/ruckus)"
#: Number of document-length buckets used by seeded sampling.
LENGTH_BUCKETS = 3

#: Longest wait at start-up, before the agent serves, for a probe that detection left running (the torch
#: import takes seconds on a busy or small host, and longer when several agents start at once).
STARTUP_PROBE_WAIT_S = 60.0

#: Longest further wait in the background for such a probe before the next periodic refresh takes over.
SETTLE_PROBE_WAIT_S = 120.0
