"""Errors shared by every service.

Services raise these; the HTTP layer of each service renders them in that service's own
error body shape (identity ``{"error": ...}``, compute ``{"itemNotFound": ...}``, ...).
Messages must never contain a secret (password, token, key).
"""

from __future__ import annotations


class StacklingError(Exception):
    """Base class. ``code`` is the HTTP status the error maps to."""

    code = 500
    title = "Internal Server Error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message()
        super().__init__(self.message)

    def default_message(self) -> str:
        return "An unexpected error prevented the server from fulfilling your request."


class BadRequest(StacklingError):
    code = 400
    title = "Bad Request"

    def default_message(self) -> str:
        return "The request you have made requires a valid body."


class ValidationError(BadRequest):
    pass


class Unauthorized(StacklingError):
    code = 401
    title = "Unauthorized"

    def default_message(self) -> str:
        return "The request you have made requires authentication."


class Forbidden(StacklingError):
    code = 403
    title = "Forbidden"

    def default_message(self) -> str:
        return "You are not authorized to perform the requested action."


class NotFound(StacklingError):
    code = 404
    title = "Not Found"

    def default_message(self) -> str:
        return "Could not find the requested resource."


class MethodNotAllowed(StacklingError):
    code = 405
    title = "Method Not Allowed"


class Conflict(StacklingError):
    code = 409
    title = "Conflict"

    def default_message(self) -> str:
        return "Conflict occurred attempting to store the resource."


class Gone(StacklingError):
    code = 410
    title = "Gone"


class PayloadTooLarge(StacklingError):
    code = 413
    title = "Request Entity Too Large"

    def default_message(self) -> str:
        return "Request is too large."


class UnsupportedMediaType(StacklingError):
    code = 415
    title = "Unsupported Media Type"


class TooManyRequests(StacklingError):
    code = 429
    title = "Too Many Requests"


class NotImplementedYet(StacklingError):
    code = 501
    title = "Not Implemented"

    def default_message(self) -> str:
        return "The action you have requested has not been implemented."


class ServiceUnavailable(StacklingError):
    code = 503
    title = "Service Unavailable"
