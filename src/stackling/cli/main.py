"""The one ``stackling`` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from stackling.common.config import Config, default_data_dir, load_config


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"state directory (default {default_data_dir()})")
    parser.add_argument("--config", type=Path, default=None,
                        help="TOML config file (default DATA_DIR/stackling.toml if present)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stackling",
                                     description="An OpenStack-compatible cloud in one command.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the all-in-one cloud in the foreground")
    _common(up)
    up.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=None, help="listen port (default 8780)")
    up.add_argument("--virt", choices=["qemu", "fake"], default=None)
    up.add_argument("--dataplane", choices=["linuxbridge", "noop"], default=None)

    sim = sub.add_parser("sim", help="the all-in-one cloud with N simulated compute hosts "
                                     "(fake hypervisors) for scale tests")
    _common(sim)
    sim.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=None, help="listen port (default 8780)")
    sim.add_argument("--hosts", type=int, default=100, help="simulated hosts (default 100)")

    serve = sub.add_parser("serve", help="run services' APIs and their control-plane "
                                         "workers, without agents (split deployment)")
    _common(serve)
    serve.add_argument("service", nargs="+",
                       choices=["identity", "image", "compute", "network", "volume"])
    serve.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default 8780)")
    serve.add_argument("--public-url", default=None,
                       help="URL clients reach this process at (goes into the catalog)")

    node = sub.add_parser("node", help="run this host's agents (split deployment): they "
                                       "join through the bus and identity")
    _common(node)
    node.add_argument("--roles", default="compute",
                      help="comma-separated: compute, network-agent, volume (default compute)")
    node.add_argument("--hostname", default=None,
                      help="this node's host name for its agents (default the machine's)")
    node.add_argument("--identity-url", default=None,
                      help="identity root URL, e.g. http://controller:8780/identity")
    node.add_argument("--bus-url", default=None, help="RabbitMQ URL (amqp://...)")
    node.add_argument("--virt", choices=["qemu", "fake"], default=None)
    node.add_argument("--dataplane", choices=["linuxbridge", "noop"], default=None)

    status = sub.add_parser("status", help="report each service's health")
    _common(status)

    db = sub.add_parser("db", help="database maintenance")
    _common(db)
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="run migrations to the newest schema")

    ident = sub.add_parser("identity", help="identity maintenance")
    _common(ident)
    ident_sub = ident.add_subparsers(dest="identity_command", required=True)
    ident_sub.add_parser("rotate-keys", help="rotate the Fernet token keys")

    image = sub.add_parser("image", help="image maintenance")
    image_sub = image.add_subparsers(dest="image_command", required=True)
    tiny = image_sub.add_parser("build-tiny", help="build the tiny guest image (and register it)")
    _common(tiny)
    tiny.add_argument("--output", type=Path, default=None, help="also copy the outputs here")
    tiny.add_argument("--register", action="store_true",
                      help="upload it into the running cloud (admin of DATA_DIR/clouds.yaml)")
    tiny.add_argument("--no-disk", action="store_true", help="skip the bootable qcow2 disk")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    overrides: dict[str, object] = {}
    if args.data_dir is not None:
        overrides["data_dir"] = str(args.data_dir.expanduser().resolve())
    api: dict[str, object] = {}
    if getattr(args, "host", None):
        api["host"] = args.host
    if getattr(args, "port", None) is not None:
        api["port"] = args.port
    if getattr(args, "public_url", None):
        api["public_url"] = args.public_url
    if api:
        overrides["api"] = api
    if getattr(args, "identity_url", None):
        overrides["auth"] = {"identity_url": args.identity_url}
    if getattr(args, "bus_url", None):
        overrides["bus"] = {"url": args.bus_url}
    if getattr(args, "hostname", None):
        for section in ("compute", "network_agent", "volume"):
            overrides[section] = {"host": args.hostname}
    for name in ("virt", "dataplane"):
        if getattr(args, name, None):
            overrides[name] = getattr(args, name)
    if getattr(args, "hosts", None):
        overrides["virt"] = "fake"
        overrides.setdefault("dataplane", "noop")  # simulated hosts have no kernel side
        # N agents heartbeat through one conductor: spread the load
        interval = max(10.0, args.hosts / 20)
        overrides["compute"] = {"fake_hosts": args.hosts, "host": "sim",
                                "heartbeat_interval": interval,
                                "service_down_time": interval * 6}
    env = dict(os.environ)
    path = args.config
    if path is None:
        data_dir = Path(str(overrides.get("data_dir") or env.get("STACKLING_DATA_DIR") or
                            default_data_dir()))
        candidate = data_dir / "stackling.toml"
        path = candidate if candidate.exists() else None
    return load_config(path, env, overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except Exception as exc:  # a config error is the user's to fix: say it plainly
        print(f"stackling: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.command in ("up", "sim"):
        from stackling.cli.up import run_up

        return asyncio.run(run_up(config))
    if args.command == "serve":
        from stackling.cli.up import run_serve

        return asyncio.run(run_serve(config, list(dict.fromkeys(args.service))))
    if args.command == "node":
        from stackling.cli.node import run_node

        return asyncio.run(run_node(config, [r.strip() for r in args.roles.split(",")
                                             if r.strip()]))
    if args.command == "status":
        from stackling.cli.status import run_status

        return asyncio.run(run_status(config))
    if args.command == "db":
        from stackling.cli.maintenance import db_upgrade

        return asyncio.run(db_upgrade(config))
    if args.command == "identity":
        from stackling.cli.maintenance import rotate_keys

        return rotate_keys(config)
    if args.command == "image":
        from stackling.cli.tiny import build_tiny

        return asyncio.run(build_tiny(config, args.output, register=args.register,
                                      disk=False if args.no_disk else None))
    return 2


if __name__ == "__main__":
    sys.exit(main())
