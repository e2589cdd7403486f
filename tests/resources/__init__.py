"""Each operation through its resource method: the request sent and the model returned."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from sendgrid_ipam import __version__
from tests.conftest import API_KEY, BASE, Sent


def assert_request(
    sent: Sent,
    method: str,
    path: str,
    query: list[str] | None = None,
    body: Any = None,
    *,
    base: str = BASE,
) -> None:
    """The request went to exactly ``base + path`` with exactly these query pairs and body.

    ``query`` holds raw ``name=value`` pairs as they appear on the wire (order aside).
    """
    assert sent.method == method
    url = urlsplit(sent.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == base + path, sent.url
    assert sorted(url.query.split("&") if url.query else []) == sorted(query or []), sent.url
    assert url.fragment == ""
    assert sent.json == body
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["User-Agent"] == f"sendgrid-ipam/{__version__}"
    assert sent.headers["Accept"] == "application/json"
    if body is None:
        assert sent.data is None
        assert "Content-Type" not in sent.headers
    else:
        assert sent.headers["Content-Type"] == "application/json"
    assert "On-Behalf-Of" not in sent.headers


def exact(url: str) -> re.Pattern[str]:
    """Match this URL as written (aioresponses would otherwise normalise its escapes)."""
    return re.compile(re.escape(url) + "$")
