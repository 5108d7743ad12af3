"""``stackling node --roles compute,network-agent,volume``: this host's agents alone.

No API and no port: the agents join the cloud through the bus (RabbitMQ) and identity
(``[auth] identity_url``, the service users' passwords in DATA_DIR/service-users.yaml copied
from the identity node). They heartbeat, so they appear in ``openstack compute service
list`` / ``network agent list`` / ``volume service list``, and take the work the control
plane sends them.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack

from stackling.bus import create_transport
from stackling.bus.url import redact_url
from stackling.cli import split
from stackling.cli.component import Component
from stackling.cli.components import COMPONENTS
from stackling.cli.up import check_choices, resolve_defaults, say
from stackling.common import heap
from stackling.common.config import Config
from stackling.common.logging import configure_logging


def role_table() -> dict[str, type[Component]]:
    return {role: cls for cls in COMPONENTS for role in cls.node_roles}


async def run_node(config: Config, roles: list[str]) -> int:
    configure_logging(config.log.level, config.log.json_format)
    table = role_table()
    unknown = [r for r in roles if r not in table]
    if unknown or not roles:
        say(f"unknown role(s) {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(table)}")
        return 2
    if config.bus.url.startswith("memory:"):
        say("a node needs a shared bus: set --bus-url (or [bus] url) to RabbitMQ, amqp://...")
        return 2
    config = resolve_defaults(config)
    problem = check_choices(config)
    if problem:
        say(problem)
        return 2
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    components: dict[type[Component], Component] = {}
    for role in roles:
        components.setdefault(table[role], table[role]())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with AsyncExitStack() as stack:
            bus = create_transport(config.bus.url, call_timeout=config.bus.call_timeout)
            say(f"bus: {redact_url(config.bus.url)}")
            await bus.start()
            stack.push_async_callback(bus.close)
            runtime = await split.split_runtime(config, bus, list(components.values()), stack)
            for role in roles:
                say(f"{role}: starting")
                await components[table[role]].start_role(role, runtime)
            say(f"node running {', '.join(roles)} (virt {config.virt}, dataplane "
                f"{config.dataplane}); identity {runtime.identity_url}")
            heap.settle()
            await stop.wait()
            say("stopping")
    except split.SplitError as exc:
        say(str(exc))
        return 2
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    say("stopped")
    return 0
