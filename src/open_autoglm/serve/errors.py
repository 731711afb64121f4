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

    def __init__(self, status: int, message: str, code: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.kind = status, message, code, kind


def error_response(status: int, message: str, code: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=status)


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
    """Map our errors, validation errors and unknown routes to OpenAI's shape; an unexpected one is a logged 500."""

    async def api_error(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, APIError)
        return error_response(err.status, err.message, err.code, err.kind)

    async def invalid(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RequestValidationError)
        message, code = _validation_message(err)
        return error_response(400, message, code)

    async def http_error(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return error_response(err.status_code, str(err.detail), code)

    async def unexpected(_: Request, err: Exception) -> JSONResponse:
        logger.exception("unexpected error while serving a request", exc_info=err)
        return error_response(500, "internal server error", "internal_error", "server_error")

    app.add_exception_handler(APIError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
