"""The UI's copy of ``common.metrics.SERVER_FIGURES`` (frontend/src/lib/serverFigures.ts) says the same.

The results page pairs each of the inference server's figures with the client's from that copy; a pair added
here and not there would be missing from the page without any error.
"""

from __future__ import annotations

import re
from pathlib import Path

from common.metrics import SERVER_FIGURES

MIRROR = Path(__file__).resolve().parents[2] / "frontend" / "src" / "lib" / "serverFigures.ts"


def test_frontend_mirror_matches_server_figures():
    text = MIRROR.read_text(encoding="utf-8")
    body = re.search(r"export const SERVER_FIGURES[^=]*=\s*\{(?P<body>.*?)\};", text, re.S)
    assert body is not None, f"no SERVER_FIGURES object in {MIRROR}"
    pairs = re.findall(r"(\w+):\s*\"(\w*)\"", body.group("body"))
    assert pairs == [(str(k), str(v)) for k, v in SERVER_FIGURES.items()], (
        f"update SERVER_FIGURES in {MIRROR.relative_to(MIRROR.parents[3])} to match common.metrics"
    )
