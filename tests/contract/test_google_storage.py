"""google-cloud-storage's private part used by providers/gcs.py: ``Client._http``.

The GCS provider sends its ranged GETs through the client's own authorised, pooled
session (a ``requests.Session``), to ``{client.api_endpoint}/download/storage/v1/...``.
"""

from __future__ import annotations

import inspect

import requests

from omnifs.providers import ProviderSettings, open_provider
from tests.servers import free_port


def test_client_http_is_the_authorised_requests_session():
    endpoint = f"http://127.0.0.1:{free_port()}"
    p = open_provider(ProviderSettings(name="gc", uri="gs://contract-bucket", endpoint=endpoint,
                                       timeout=0.5))
    try:
        session = p.client._http
        assert isinstance(session, requests.Session)
        params = inspect.signature(session.request).parameters
        assert {"method", "url", "headers", "timeout"} <= set(params)
        # ``stream=True`` reaches requests' own request() through the keyword arguments
        assert any(p.kind is p.VAR_KEYWORD for p in params.values()) or "stream" in params
        assert "stream" in inspect.signature(requests.Session.request).parameters
        assert p.client.api_endpoint == endpoint
        assert p.client._http is session  # one session, reused: its pool is the point
    finally:
        p.close()
