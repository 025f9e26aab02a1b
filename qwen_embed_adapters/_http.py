"""Kept for the modules that still import from here (the CLI's doctor and the Haystack integration);
the HTTP layer is the ``http`` package."""

from __future__ import annotations

from ._urls import redact_url
from .http.session import API_KEY_ENVS

__all__ = ["API_KEY_ENVS", "redact_url"]
