"""Every failure as OpenAI's error body, {"error": {"message", "type", "code"}}, so OpenAI clients report it."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

logger = logging.getLogger(__name__)


class APIError(Exception):
    """A request the server refuses, with the HTTP status and OpenAI error code to answer with."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        kind: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.kind = status, message, code, kind
        self.headers = headers  # e.g. Retry-After on a 503


def error_body(message: str, code: str, kind: str = "invalid_request_error") -> dict[str, dict[str, str]]:
    return {"error": {"message": message, "type": kind, "code": code}}


def error_response(
    status: int,
    message: str,
    code: str,
    kind: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(message, code, kind), status_code=status, headers=headers)


def internal_error(err: BaseException) -> JSONResponse:
    """The 500 for an unexpected error: logged with its traceback, answered without it."""
    logger.error("unexpected error while serving a request", exc_info=err)
    return error_response(500, "internal server error", "internal_error", "server_error")


def _validation_message(err: RequestValidationError) -> tuple[str, str]:
    problems = err.errors()
    if any(p.get("type") == "json_invalid" for p in problems):
        return "the request body is not valid JSON", "invalid_json"
    described = [
        f"{'.'.join(str(part) for part in p.get('loc', ()) if part != 'body') or 'body'}: {p.get('msg')}"
        for p in problems[:5]
    ]
    return "; ".join(described), "invalid_value"


def install_error_handlers(app: FastAPI) -> None:
    """Map our errors, validation errors and unknown routes to OpenAI's shape. (An unexpected error becomes a 500 in
    the app's middleware, where it is counted too: a handler for Exception runs outside every middleware.)"""

    async def api_error(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, APIError)
        return error_response(err.status, err.message, err.code, err.kind, err.headers)

    async def invalid(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RequestValidationError)
        message, code = _validation_message(err)
        return error_response(400, message, code)

    async def http_error(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return error_response(err.status_code, str(err.detail), code)

    app.add_exception_handler(APIError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
