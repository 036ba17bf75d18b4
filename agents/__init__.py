"""Agents app: registered agents, their capabilities, credentials, health and capability matching."""
