"""What every request passes before its route runs: the API key, then the body-size limit."""

from __future__ import annotations

import hmac

from fastapi import Request
from fastapi.responses import JSONResponse

from open_autoglm.serve.errors import error_response

OPEN_PATHS = frozenset({"/health"})  # load balancers probe it without credentials


def check_api_key(request: Request, api_key: str | None) -> JSONResponse | None:
    """401 unless the request carries `Authorization: Bearer <key>` (compared in constant time)."""
    if api_key is None or request.url.path in OPEN_PATHS:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode()):
        return None
    return error_response(
        401, "missing or incorrect API key (send Authorization: Bearer KEY)", "invalid_api_key"
    )


async def check_body_size(request: Request, max_bytes: int) -> JSONResponse | None:
    """413 for a body over the limit: refused on its declared length, or counted as it arrives when undeclared."""
    too_large = error_response(413, f"the request body is over {max_bytes} bytes", "request_too_large")
    declared = request.headers.get("content-length")
    if declared is not None:
        return too_large if not declared.isdigit() or int(declared) > max_bytes else None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return too_large
        chunks.append(chunk)
    request._body = b"".join(chunks)  # the route reads the body we already took off the wire
    return None
