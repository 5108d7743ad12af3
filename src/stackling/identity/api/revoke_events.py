"""``GET /v3/OS-REVOKE/events``: the revocation events, in Keystone's shape.

Keystone's events have no application-credential attribute; ours do (deleting an application
credential voids its tokens), shown as ``application_credential_id`` so a consumer never
mistakes such an event for a revoke-everything one. The event's cleanup time is not shown:
Keystone's ``expires_at`` means something else (the expiry of the tokens it matches).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import ValidationError
from stackling.common.timeutils import isotime, parse_isotime
from stackling.identity.api.common import authorize, base_url, head_aware, identity, json_response
from stackling.identity.models import RevocationEvent

router = APIRouter(prefix="/v3/OS-REVOKE")

_ATTRS = ("user_id", "role_id", "domain_id", "project_id", "audit_id", "audit_chain_id")


def _render(event: RevocationEvent) -> dict[str, Any]:
    out: dict[str, Any] = {k: getattr(event, k) for k in _ATTRS if getattr(event, k)}
    if event.app_cred_id:
        out["application_credential_id"] = event.app_cred_id
    out["issued_before"] = isotime(event.issued_before)
    out["revoked_at"] = isotime(event.revoked_at)
    return out


@router.api_route("/events", methods=["GET", "HEAD"])
async def list_revoke_events(request: Request) -> Response:
    await authorize(request, "identity:list_revoke_events")
    since: datetime | None = None
    if request.query_params.get("since"):
        raw = request.query_params["since"]
        try:
            since = parse_isotime(raw)
        except ValueError as exc:
            raise ValidationError(f"invalidate date format {raw}") from exc
    events = await identity(request).revocations.list_since(since)
    return head_aware(request, json_response({
        "events": [_render(e) for e in events],
        "links": {"self": f"{base_url(request)}/v3/OS-REVOKE/events",
                  "previous": None, "next": None},
    }))
