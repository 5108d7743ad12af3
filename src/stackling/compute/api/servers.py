"""``/v2.1/servers``: create (flow step 4), list, detail, show, update, delete."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest
from stackling.common.timeutils import parse_isotime
from stackling.compute import states
from stackling.compute.api.addresses import addresses_of, servers_by_ip
from stackling.compute.api.common import (
    allowed,
    authorize,
    caller,
    compute,
    invalid,
    json_body,
    no_extra,
    obj,
    owned,
    query_bool,
    string,
)
from stackling.compute.api.microversion import at_least
from stackling.compute.api.server_body import HOSTNAME_RE, ip_address, parse_create
from stackling.compute.api.views import server_basic, server_created, server_detail
from stackling.compute.models import Instance
from stackling.compute.service import create as creating
from stackling.compute.service import servers
from stackling.compute.service.instances import ServerRecord, not_found
from stackling.web.pagination import page_links, parse_limit
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/servers")

#: filters any caller may use (Nova's, by microversion); admins may use every filter
_USER_FILTERS = {"reservation_id", "name", "status", "image", "flavor", "ip",
                 "changes-since", "all_tenants"}
_USER_FILTERS_BY_VERSION = [("2.5", {"ip6"}), ("2.26", {"tags", "tags-any", "not-tags",
                                                        "not-tags-any"}),
                            ("2.66", {"changes-before"}), ("2.73", {"locked"}),
                            ("2.83", {"availability_zone", "config_drive", "key_name",
                                      "created_at", "launched_at", "terminated_at",
                                      "power_state", "task_state", "vm_state", "progress",
                                      "user_id"})]
_ADMIN_FILTERS = {"host", "node", "deleted", "project_id", "tenant_id", "uuid",
                  "description", "hostname", "launch_index", "vm_state", "task_state",
                  "power_state", "availability_zone", "key_name", "config_drive", "user_id",
                  "ip6", "locked", "access_ip_v4", "access_ip_v6"}
_PAGING = {"limit", "marker", "sort_key", "sort_dir", "fields"}


def _server_target(rec: ServerRecord) -> dict[str, Any]:
    return {"project_id": rec.row.project_id, "user_id": rec.row.user_id}


async def load(request: Request, ctx: RequestContext, uuid: str) -> ServerRecord:
    """The server, or 404 (also for servers of other projects, to non-admins)."""
    rec = await servers.get_server(compute(request), uuid)
    owned(ctx, rec.row.project_id, not_found(uuid))
    return rec


async def load_authorized(request: Request, ctx: RequestContext, uuid: str,
                          rule: str) -> ServerRecord:
    """:func:`load`, then the policy ``rule`` against the server's project and user."""
    rec = await load(request, ctx, uuid)
    authorize(request, ctx, rule, _server_target(rec))
    return rec


async def _addresses(request: Request, records: list[ServerRecord]
                     ) -> dict[str, dict[str, list[dict[str, Any]]]]:
    return await addresses_of(compute(request).network, [r.row.uuid for r in records])


def _detail(request: Request, ctx: RequestContext, rec: ServerRecord,
            **kwargs: Any) -> dict[str, Any]:
    target = _server_target(rec)
    return server_detail(
        request, rec, is_admin=ctx.is_admin,
        extended=allowed(request, ctx, "os_compute_api:os-extended-server-attributes", target),
        host_status=allowed(request, ctx, "os_compute_api:servers:show:host_status", target),
        extra_specs=at_least(request, "2.47") and allowed(
            request, ctx, "os_compute_api:servers:show:flavor-extra-specs", target),
        **kwargs)


# -- list -----------------------------------------------------------------------------------
def _allowed_filters(request: Request, ctx: RequestContext) -> set[str]:
    names = set(_USER_FILTERS)
    for version, extra in _USER_FILTERS_BY_VERSION:
        if at_least(request, version):
            names |= extra
    if allowed(request, ctx, "os_compute_api:servers:allow_all_filters"):
        names |= _ADMIN_FILTERS
    return names


def _time(value: str, name: str) -> Any:
    try:
        return parse_isotime(value)
    except ValueError:
        raise BadRequest(f"Invalid filter field: {name}.") from None


def _regex(value: str) -> str:
    try:
        re.compile(value)
        return value
    except re.error:
        return re.escape(value)


def build_query(request: Request, ctx: RequestContext, detail: bool
                ) -> tuple[servers.ListQuery | None, int]:
    """The list query (None: nothing can match) and the page size."""
    svc = compute(request)
    params = request.query_params
    names = _allowed_filters(request, ctx)
    if at_least(request, "2.75"):
        known = names | _ADMIN_FILTERS | _PAGING
        unknown = sorted(set(params) - known)
        if unknown:
            raise invalid("query", unknown[0], "Additional properties are not allowed")
    present = {k: params.getlist(k) for k in params if k in names or k in _PAGING}
    q = servers.ListQuery(project_id=ctx.project_id)
    all_tenants = False
    if "all_tenants" in present:
        raw = present["all_tenants"][-1]
        all_tenants = raw == "" or query_bool(raw, "all_tenants")
    if all_tenants:
        rule = "detail:get_all_tenants" if detail else "index:get_all_tenants"
        authorize(request, ctx, f"os_compute_api:servers:{rule}", {})
        q.project_id = None
    for key in ("project_id", "tenant_id"):
        # as Nova: without all_tenants a project filter is ignored (bug 1659811), and only
        # who may list all tenants may name one
        if key in present and all_tenants:
            q.project_id = present[key][-1]
    one = {k: v[-1] for k, v in present.items()}
    if "name" in one:
        q.name = _regex(one["name"])
    if "status" in one:
        matches: list[states.StatusMatch] = []
        for status in present["status"]:
            if status.lower() == "deleted":
                q.deleted = True
                matches.append(states.StatusMatch(states.DELETED, None))
                continue
            if not states.known_status(status):
                if at_least(request, "2.38"):
                    raise BadRequest("Invalid status value")
                return None, 0
            matches.extend(states.matches_for_status(status))
        q.status = matches
    for key, attr in (("image", "image"), ("flavor", "flavor"), ("host", "host"),
                      ("node", "node"), ("reservation_id", "reservation_id"),
                      ("availability_zone", "availability_zone"), ("key_name", "key_name"),
                      ("user_id", "user_id"), ("uuid", "uuid")):
        if key in one:
            setattr(q, attr, one[key])
    if "description" in one:
        q.description = _regex(one["description"])
    if "image" in one:
        q.image = one["image"].rstrip("/").rsplit("/", 1)[-1]
    if ("ip" in one or "ip6" in one) and svc.network is None:
        return None, 0  # no server has addresses without a network service
    if "changes-since" in one:
        q.changes_since = _time(one["changes-since"], "changes-since")
    if "changes-before" in one:
        q.changes_before = _time(one["changes-before"], "changes-before")
        if q.changes_since and q.changes_since > q.changes_before:
            raise BadRequest("The value of changes-since must be less than or equal to "
                             "changes-before.")
    if "deleted" in one:
        q.deleted = query_bool(one["deleted"], "deleted")
    if "locked" in one:
        q.locked = query_bool(one["locked"], "locked")
    if "config_drive" in one:
        q.config_drive = query_bool(one["config_drive"], "config_drive")
    for key in ("vm_state", "task_state"):
        if key in present:
            setattr(q, key, present[key])
    if "power_state" in present:
        try:
            q.power_state = [int(v) for v in present["power_state"]]
        except ValueError:
            raise BadRequest("Invalid power_state filter") from None
    for key, attr in (("tags", "tags"), ("tags-any", "tags_any"), ("not-tags", "not_tags"),
                      ("not-tags-any", "not_tags_any")):
        if key in one:
            setattr(q, attr, [t for t in one[key].split(",") if t])
    keys = params.getlist("sort_key")
    dirs = params.getlist("sort_dir")
    for d in dirs:
        if d not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {d}")
    q.sort = [(k, dirs[i] if i < len(dirs) else (dirs[-1] if dirs else "desc"))
              for i, k in enumerate(keys)]
    limit = parse_limit(params.get("limit"), svc.conf.max_limit)
    q.limit = svc.conf.max_limit if limit is None else limit
    q.marker = params.get("marker")
    return q, q.limit


async def _list(request: Request, detail: bool) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, f"os_compute_api:servers:{'detail' if detail else 'index'}")
    q, limit = build_query(request, ctx, detail)
    ips = {k: request.query_params[k] for k in ("ip", "ip6") if k in request.query_params}
    if q is not None and ips:
        q.uuids = await servers_by_ip(compute(request).network, ips)
    records = await servers.list_servers(compute(request), q) if q is not None else []
    if detail:
        found = await _addresses(request, records)
        items = [_detail(request, ctx, r, addresses=found[r.row.uuid]) for r in records]
    else:
        items = [server_basic(request, r) for r in records]
    body: dict[str, Any] = {"servers": items}
    nav = page_links(request, items, limit) if q is not None else []
    if nav:
        body["servers_links"] = nav
    return JSONResponse(body)


@router.get("")
async def list_servers(request: Request) -> JSONResponse:
    return await _list(request, detail=False)


@router.get("/detail")
async def list_servers_detail(request: Request) -> JSONResponse:
    return await _list(request, detail=True)


# -- one server -----------------------------------------------------------------------------
@router.get("/{server_id}")
async def show_server(request: Request, server_id: str) -> JSONResponse:
    ctx = await caller(request)
    rec = await load(request, ctx, server_id)
    authorize(request, ctx, "os_compute_api:servers:show", _server_target(rec))
    found = await _addresses(request, [rec])
    return JSONResponse({"server": _detail(request, ctx, rec, addresses=found[rec.row.uuid],
                                           server_groups=at_least(request, "2.71"))})


@router.post("")
async def create_server(request: Request) -> JSONResponse:
    """Flow step 2 -> 4: the request comes in, is checked, recorded and cast."""
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:servers:create")
    req, return_reservation = parse_create(request, await json_body(request))
    if (req.requested_host or req.requested_node):
        authorize(request, ctx, "os_compute_api:servers:create:requested_destination")
    result = await creating.create_servers(compute(request), ctx, req)
    if return_reservation:
        return JSONResponse({"reservation_id": result.reservation_id}, status_code=202)
    body = server_created(request, result.uuids[0], result.admin_password,
                          req.security_groups)
    return JSONResponse({"server": body}, status_code=202,
                        headers={"Location": body["links"][0]["href"]})


@router.put("/{server_id}")
async def update_server(request: Request, server_id: str) -> JSONResponse:
    ctx = await caller(request)
    rec = await load(request, ctx, server_id)
    authorize(request, ctx, "os_compute_api:servers:update", _server_target(rec))
    server = obj(await json_body(request), "server")
    allowed_keys = {"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"}
    if at_least(request, "2.19"):
        allowed_keys.add("description")
    if at_least(request, "2.90"):
        allowed_keys.add("hostname")
    no_extra(server, allowed_keys, "server")
    upd = servers.ServerUpdate()
    if "name" in server:
        upd.name = string(server, "name", min_len=1, max_len=255, name_like=True)
    if "description" in server:
        upd.description = string(server, "description", max_len=255, nullable=True)
        upd.set_description = True
    if "hostname" in server:
        upd.hostname = string(server, "hostname", min_len=1, max_len=255)
        if upd.hostname is None or not HOSTNAME_RE.match(upd.hostname):
            raise invalid("hostname", upd.hostname, "is not a valid hostname")
    for key, version in (("accessIPv4", 4), ("accessIPv6", 6)):
        if key in server:
            value = ip_address(server, key, version) if server[key] not in (None, "") else None
            if version == 4:
                upd.access_ip_v4, upd.set_ipv4 = value, True
            else:
                upd.access_ip_v6, upd.set_ipv6 = value, True
    if "OS-DCF:diskConfig" in server:
        if server["OS-DCF:diskConfig"] not in ("AUTO", "MANUAL"):
            raise invalid("OS-DCF:diskConfig", server["OS-DCF:diskConfig"],
                          "is not one of ['AUTO', 'MANUAL']")
        upd.auto_disk_config = server["OS-DCF:diskConfig"] == "AUTO"
    rec = await servers.update_server(compute(request), ctx, server_id, upd)
    found = await _addresses(request, [rec])
    return JSONResponse({"server": _detail(request, ctx, rec, full=at_least(request, "2.75"),
                                           addresses=found[rec.row.uuid],
                                           server_groups=at_least(request, "2.71"))})


@router.delete("/{server_id}")
async def delete_server(request: Request, server_id: str) -> Response:
    ctx = await caller(request)

    def allow(row: Instance) -> None:
        # the owner for the 404 and the policy, checked on the row the delete starts from
        owned(ctx, row.project_id, not_found(server_id))
        authorize(request, ctx, "os_compute_api:servers:delete",
                  {"project_id": row.project_id, "user_id": row.user_id})

    await servers.delete_server(compute(request), ctx, server_id, allow=allow)
    return Response(status_code=204)

