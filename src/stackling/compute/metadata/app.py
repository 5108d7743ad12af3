"""The metadata service (Nova's metadata API) behind the network's metadata proxy.

The proxy adds ``X-Instance-ID`` and ``X-Instance-ID-Signature`` = hex
HMAC-SHA256(``[metadata] shared_secret``, instance id) (and ``X-Tenant-ID``); a request
without a valid signature is refused (403), so a guest cannot read another instance's data
by forging the header. Paths: ``/openstack[/<version>[/<file>]]`` and the EC2 tree
``/<version>/meta-data/...`` and ``/<version>/user-data``, ``latest`` included.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackling.compute.metadata import content
from stackling.compute.rpcapi import InstanceInfo

Lookup = Callable[[str], Awaitable[InstanceInfo | None]]
#: stores a password the guest posted: True stored, False one was set already, None no such
#: instance
SetPassword = Callable[[str, str], Awaitable[bool | None]]

PASSWORD_MAX = 4 * 255  # as Nova: four system metadata chunks of 255 characters

OPENSTACK_FILES = ("meta_data.json", "user_data", "password", "vendor_data.json",
                   "network_data.json", "vendor_data2.json")


def sign(secret: str, instance_id: str) -> str:
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


def _text(body: str | bytes, status: int = 200, media: str = "text/plain") -> Response:
    return Response(body, status_code=status, media_type=media)


def create_app(lookup: Lookup, shared_secret: str | None,
               availability_zone: str = "nova",
               set_password: SetPassword | None = None) -> Starlette:
    async def instance_of(request: Request) -> InstanceInfo | Response:
        instance_id = request.headers.get("x-instance-id", "")
        signature = request.headers.get("x-instance-id-signature", "")
        if not shared_secret:
            return _text("The metadata service has no shared secret configured "
                         "([metadata] shared_secret).", 503)
        if not instance_id or not hmac.compare_digest(
                sign(shared_secret, instance_id), signature):
            return _text("Invalid proxy request signature.", 403)
        instance = await lookup(instance_id)
        if instance is None or instance.deleted:
            return _text("Instance not found.", 404)
        tenant = request.headers.get("x-tenant-id")
        if tenant is not None and tenant != instance.project_id:
            return _text("Tenant ID does not match the instance.", 403)
        return instance

    async def root(request: Request) -> Response:
        found = await instance_of(request)
        if isinstance(found, Response):
            return found
        return _text("\n".join((*content.EC2_VERSIONS, "latest")))

    async def openstack(request: Request) -> Response:
        found = await instance_of(request)
        if isinstance(found, Response):
            return found
        parts = [p for p in request.path_params.get("rest", "").split("/") if p]
        if request.method == "POST" and len(parts) != 2:
            return _text("Method not allowed.", 405)
        if not parts:
            return _text("\n".join((*content.OPENSTACK_VERSIONS, "latest")))
        version = parts[0]
        if version not in (*content.OPENSTACK_VERSIONS, "latest") or len(parts) > 2:
            return _text("Not found.", 404)
        files = content.openstack_files(found, [], availability_zone)
        if len(parts) == 1:
            names = [n for n in OPENSTACK_FILES if n in files or n == "password"]
            return _text("\n".join(names))
        name = parts[1]
        if request.method == "POST" and name != "password":
            return _text("Method not allowed.", 405)
        if name == "password":
            return await password(request, found)
        if name not in files:
            return _text("Not found.", 404)
        media = "application/json" if name.endswith(".json") else "text/plain"
        return _text(files[name], media=media)

    async def password(request: Request, instance: InstanceInfo) -> Response:
        """GET: what the guest posted (empty when nothing). POST: set it, once (409 after;
        the API's DELETE clears it); at most :data:`PASSWORD_MAX` bytes."""
        if request.method == "GET":
            return _text(instance.password)
        if request.method != "POST" or set_password is None:
            return _text("Bad request.", 400)
        body = await request.body()  # bounded by the API's body limit
        if len(body) > PASSWORD_MAX:
            return _text("Request is too large.", 400)
        try:
            value = body.decode()
        except UnicodeDecodeError:
            return _text("The password must be text.", 400)
        stored = await set_password(instance.uuid, value)
        if stored is None:
            return _text("Instance not found.", 404)
        if not stored:
            return _text("A password is set already.", 409)
        return _text("")

    async def ec2(request: Request) -> Response:
        found = await instance_of(request)
        if isinstance(found, Response):
            return found
        version = request.path_params["version"]
        if version not in (*content.EC2_VERSIONS, "latest"):
            return _text("Not found.", 404)
        rest = request.path_params.get("rest", "")
        if rest in ("", "/"):
            data = content.user_data(found)
            return _text("meta-data/" + ("\nuser-data" if data is not None else ""))
        if rest.strip("/") == "user-data":
            data = content.user_data(found)
            return _text(data, 200) if data is not None else _text("Not found.", 404)
        if rest.startswith("meta-data"):
            tree = content.ec2_meta_data(found, availability_zone)
            if rest.rstrip("/") == "meta-data.json":
                return _text(json.dumps(tree), media="application/json")
            value = content.ec2_lookup(tree, rest[len("meta-data"):])
            if value is not None:
                return _text(value)
        return _text("Not found.", 404)

    return Starlette(routes=[
        Route("/", root),
        Route("/openstack", openstack),
        Route("/openstack/{rest:path}", openstack, methods=["GET", "HEAD", "POST"]),
        Route("/{version}", ec2),
        Route("/{version}/{rest:path}", ec2),
    ])

