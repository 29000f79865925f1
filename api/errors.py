"""Kuma's error JSON (pkg/core/rest/errors/error_handler.go, types/error.go): one shape for every failure.

``{"type": "/std-errors", "status", "title", "detail", "invalid_parameters": [{field, reason}],
"details": <copy of detail>, "causes": [{field, message}]}``; the last two are Kuma's deprecated copies.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from meshxds.resources.errors import Problem


def error(status: int, title: str, detail: str, fields: Sequence[tuple[str, str]] = ()) -> web.Response:
    body: dict[str, object] = {"type": "/std-errors", "status": status, "title": title, "detail": detail}
    if fields:
        body["invalid_parameters"] = [{"field": f, "reason": r} for f, r in fields]
    body["details"] = detail
    if fields:
        body["causes"] = [{"field": f, "message": r} for f, r in fields]
    return web.json_response(body, status=status)


def not_found(title: str) -> web.Response:
    return error(404, title, "Not found")


def invalid(title: str, problems: Sequence[Problem]) -> web.Response:
    """400 "Resource is not valid" with one entry per problem, field paths as ``validate`` prints them."""
    return error(400, title, "Resource is not valid", [(p.field or "", p.message) for p in problems])


def bad_request(detail: str) -> web.Response:
    return error(400, "Bad Request", detail)
