"""azure-storage-blob's private part used by providers/azlist.py: ``ContainerClient._client``.

The Azure provider sends its List Blobs requests through the container client's own
generated client, ``container._client._send_request(HttpRequest, stream=True)``, so that
authentication, the API version header, retries and timeouts stay the SDK's; only the
parsing of the XML answer is ours. No request is sent here.
"""

from __future__ import annotations

import inspect

from azure.core.rest import HttpRequest
from azure.storage.blob import ContainerClient

from tests.servers import azure_connection_string, free_port


def test_container_client_sends_a_rest_request_through_its_pipeline():
    container = ContainerClient.from_connection_string(
        azure_connection_string(f"http://127.0.0.1:{free_port()}"), "contract-container")
    send = container._client._send_request
    params = inspect.signature(send).parameters
    assert "request" in params and "stream" in params
    assert isinstance(container.api_version, str) and container.api_version
    assert container.url.endswith("/contract-container")
    # an HttpRequest with params builds the URL the pipeline sends
    req = HttpRequest("GET", container.url, params={"restype": "container", "comp": "list"})
    assert "comp=list" in req.url
