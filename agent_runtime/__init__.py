"""RUCKUS agent: a FastAPI service that detects its host, runs benchmark jobs and reports results.

It must install and run without Django (``pip install ruckus[agent]``).
"""

__version__ = "0.1.0"
