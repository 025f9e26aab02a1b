"""OpenAI-shaped errors: ``{"error": {"message", "type", "param", "code"}}`` for every failure."""

import logging
from typing import Any

from ..errors import MissingDependencyError, _restore

logger = logging.getLogger("qwen_embed_adapters.server")


def import_fastapi() -> Any:
    """fastapi, or MissingDependencyError naming the ``server`` extra."""
    try:
        import fastapi
    except ImportError:
        raise MissingDependencyError("fastapi", "server", "qwen-embed serve") from None
    return fastapi


class APIError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type

    def __reduce__(self) -> tuple[Any, ...]:
        # picklable with its fields, like every error of the package (errors.QwenEmbedError.__reduce__)
        return (_restore, (type(self), self.args, dict(self.__dict__)))

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def error_response(err: APIError) -> Any:
    """The JSONResponse for an APIError (OpenAI's error shape)."""
    from fastapi.responses import JSONResponse

    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


def install_error_handlers(app: Any) -> None:
    """Answer APIError, Starlette's HTTP errors and FastAPI's validation errors in OpenAI's shape."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> Any:
        if exc.status >= 500:
            logger.error("request %s: %s", getattr(request.state, "request_id", "-"), exc.message)
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return error_response(APIError(exc.status_code, str(exc.detail), code=code))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Any:
        return error_response(APIError(400, f"invalid request: {exc.errors()!s:.500}"))


__all__ = [
    "APIError",
    "error_response",
    "import_fastapi",
    "install_error_handlers",
]
