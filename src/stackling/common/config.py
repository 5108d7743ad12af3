"""Typed configuration: one TOML file plus environment overrides.

The configuration is a plain value passed to whatever needs it; there is no global
config object. Environment variables override the file: ``STACKLING_<SECTION>__<KEY>``
(double underscore between levels), e.g. ``STACKLING_IDENTITY__TOKEN_EXPIRATION=600``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "STACKLING_"
SERVICES = ("identity", "compute", "image", "network", "volume", "object-store")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stackling"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8780, ge=0, le=65535)
    # Base URL clients use to reach us (goes into the catalog). Derived from host/port if unset.
    public_url: str | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)


class DatabaseConfig(_Section):
    # SQLAlchemy URL template; "{service}" and "{data_dir}" are substituted.
    url: str = "sqlite:///{data_dir}/{service}.sqlite"
    echo: bool = False


class BusConfig(_Section):
    # "memory://" for the in-process bus, "amqp://user:pass@host:5672/vhost" for RabbitMQ.
    url: str = "memory://"
    call_timeout: float = Field(default=60.0, gt=0)


class SecurityComplianceConfig(_Section):
    """Keystone's ``[security_compliance]`` PCI-DSS options, with Keystone's defaults (all off).

    The lockout pair lives on :class:`IdentityConfig` (``lockout_failure_attempts`` /
    ``lockout_duration``). ``password_regex`` is checked here, at load time: a broken pattern
    stops the cloud from starting instead of refusing every password change later."""

    # a user who has not authenticated for this many days is disabled (API ``enabled``: false)
    disable_user_account_days_inactive: int | None = Field(default=None, ge=1)
    # new passwords expire after this many days (existing passwords are not touched)
    password_expires_days: int | None = Field(default=None, ge=1)
    # a new password must differ from this many latest passwords (the current one included)
    unique_last_password_count: int = Field(default=0, ge=0)
    # days a self-service password must be kept before the user may change it again
    minimum_password_age: int = Field(default=0, ge=0)
    # passwords must match (re.match) this pattern; the description explains it to users
    password_regex: str | None = None
    password_regex_description: str | None = None
    # new users and admin resets get an already expired password: the user must change it
    change_password_upon_first_use: bool = False

    @field_validator("password_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(
                    f"password_regex is not a valid regular expression: {exc}") from exc
        return value


class IdentityConfig(_Section):
    token_expiration: int = Field(default=3600, ge=60)
    allow_expired_window: int = Field(default=172800, ge=0)
    max_active_keys: int = Field(default=3, ge=2)
    key_repository: Path | None = None  # default: <data_dir>/fernet-keys
    password_hash_rounds: int = Field(default=12, ge=4, le=31)
    lockout_failure_attempts: int | None = Field(default=6, ge=1)
    lockout_duration: int = Field(default=1800, ge=1)
    max_password_length: int = Field(default=4096, ge=8)
    # Per-process cache of computed role sets; bounded staleness across processes.
    cache_ttl: float = Field(default=2.0, ge=0)
    policy_file: Path | None = None
    security_compliance: SecurityComplianceConfig = Field(
        default_factory=SecurityComplianceConfig)


class ImageQuotaConfig(_Section):
    """Per-project image limits, with Glance's unified-limit names; -1 means unlimited.
    Sizes are in MiB, as Glance counts them."""

    image_count_total: int = Field(default=-1, ge=-1)
    image_count_uploading: int = Field(default=-1, ge=-1)
    image_size_total: int = Field(default=-1, ge=-1)
    image_stage_total: int = Field(default=-1, ge=-1)


class QemuConfig(_Section):
    """The QEMU hypervisor driver (``virt = "qemu"``)."""

    binary: str = "qemu-system-x86_64"
    # kvm: always; tcg: never; auto: KVM only when a short probe boot proves it works
    accel: Literal["auto", "kvm", "tcg"] = "auto"
    machine: str = "pc"
    # a guest whose serial console stays silent this long after start is a failed boot
    boot_timeout: float = Field(default=60.0, gt=0)
    # stop/soft reboot: seconds for the guest to power off after the ACPI button
    powerdown_timeout: float = Field(default=30.0, ge=0)
    kvm_probe_timeout: float = Field(default=10.0, gt=0)
    # attach a config drive (ISO 9660, label config-2) to every VM
    force_config_drive: bool = True
    vnc: bool = True
    # host capacity reported to the scheduler (0: the real host's figure)
    vcpus: int = Field(default=0, ge=0)
    memory_mb: int = Field(default=0, ge=0)
    local_gb: int = Field(default=0, ge=0)


class MetadataConfig(_Section):
    """The metadata service: requests proxied by the network's metadata proxy carry
    X-Instance-ID and X-Instance-ID-Signature = hex HMAC-SHA256(shared_secret, id)."""

    shared_secret: str | None = None


class ConsoleConfig(_Section):
    """Remote consoles: one-time tokens and the websocket proxy."""

    token_ttl: float = Field(default=600.0, gt=0)
    # the base URL clients open (default: <public_url>/console)
    base_url: str | None = None


class ImageConfig(_Section):
    """The image service (Glance v2)."""

    store: Literal["file", "memory"] = "file"
    store_dir: Path | None = None  # default: <data_dir>/images
    staging_dir: Path | None = None  # default: <data_dir>/image-staging
    max_image_size: int = Field(default=1 << 40, ge=1)  # Glance's image_size_cap (1 TiB)
    quotas: ImageQuotaConfig = Field(default_factory=ImageQuotaConfig)
    # per-project overrides of ``quotas``, keyed by project id
    project_quotas: dict[str, ImageQuotaConfig] = Field(default_factory=dict)
    # Glance's image_property_quota / image_tag_quota / image_member_quota
    property_quota: int = Field(default=128, ge=-1)
    tag_quota: int = Field(default=128, ge=-1)
    member_quota: int = Field(default=128, ge=-1)
    import_methods: list[str] = Field(default_factory=lambda: ["glance-direct", "web-download"])
    limit_param_default: int = Field(default=25, ge=1)
    api_limit_max: int = Field(default=1000, ge=1)
    policy_file: Path | None = None
    # register the bundled tiny guest image on first start: "auto" when the host has what
    # building it needs, "always" (fail loudly if it cannot), or "never"
    build_tiny_image: Literal["auto", "always", "never"] = "auto"

    @field_validator("import_methods", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment: "glance-direct,web-download"
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    def quota_for(self, project_id: str | None) -> ImageQuotaConfig:
        return self.project_quotas.get(project_id or "", self.quotas)


class ComputeQuotaConfig(_Section):
    """Default per-project compute quotas (Nova's defaults; -1 is unlimited)."""

    instances: int = Field(default=10, ge=-1)
    cores: int = Field(default=20, ge=-1)
    ram: int = Field(default=51200, ge=-1)
    metadata_items: int = Field(default=128, ge=-1)
    key_pairs: int = Field(default=100, ge=-1)
    server_groups: int = Field(default=10, ge=-1)
    server_group_members: int = Field(default=10, ge=-1)
    injected_files: int = Field(default=5, ge=-1)
    injected_file_content_bytes: int = Field(default=10240, ge=-1)
    injected_file_path_bytes: int = Field(default=255, ge=-1)


class ComputeConfig(_Section):
    """The compute service: API, scheduler, conductor and this node's compute agent."""

    # this node's compute host name (default: the machine's hostname)
    host: str | None = None
    default_availability_zone: str = "nova"
    internal_service_availability_zone: str = "internal"
    max_limit: int = Field(default=1000, ge=1)
    # agents report every heartbeat_interval s; a host silent for service_down_time s is down
    heartbeat_interval: float = Field(default=10.0, gt=0)
    service_down_time: float = Field(default=60.0, gt=0)
    # a failed build is tried on up to this many hosts before the server goes to ERROR
    max_attempts: int = Field(default=3, ge=1)
    weigher: Literal["spread", "pack"] = "spread"
    cpu_allocation_ratio: float = Field(default=4.0, gt=0)
    ram_allocation_ratio: float = Field(default=1.0, gt=0)
    disk_allocation_ratio: float = Field(default=1.0, gt=0)
    reserved_host_memory_mb: int = Field(default=512, ge=0)
    reserved_host_disk_gb: int = Field(default=0, ge=0)
    # the fake hypervisor's size (--virt fake) and how long its spawn takes
    fake_vcpus: int = Field(default=16, ge=1)
    fake_memory_mb: int = Field(default=65536, ge=1)
    fake_local_gb: int = Field(default=1024, ge=1)
    fake_spawn_delay: float = Field(default=0.0, ge=0)
    # how many fake hypervisors this process runs (``stackling sim --hosts N``); with more
    # than one they are named <host>-0001, <host>-0002, ...
    fake_hosts: int = Field(default=1, ge=1, le=100000)
    # how long a build waits for network-vif-plugged of its ports (Nova's
    # vif_plugging_timeout, 0: do not wait) and whether a timeout fails the build
    vif_plugging_timeout: float = Field(default=300.0, ge=0)
    vif_plugging_is_fatal: bool = True
    # return a generated adminPass from server create / rebuild (Nova's default)
    enable_instance_password: bool = True
    # create m1.tiny ... m1.xlarge on first start
    bootstrap_flavors: bool = True
    policy_file: Path | None = None
    quotas: ComputeQuotaConfig = Field(default_factory=ComputeQuotaConfig)


class VolumeQuotaConfig(_Section):
    """Default per-project block storage quotas (Cinder's defaults; -1 is unlimited)."""

    volumes: int = Field(default=10, ge=-1)
    snapshots: int = Field(default=10, ge=-1)
    gigabytes: int = Field(default=1000, ge=-1)
    backups: int = Field(default=10, ge=-1)
    backup_gigabytes: int = Field(default=1000, ge=-1)
    per_volume_gigabytes: int = Field(default=-1, ge=-1)
    groups: int = Field(default=10, ge=-1)


class VolumeConfig(_Section):
    """The block storage service: API, scheduler, this node's volume and backup workers."""

    host: str | None = None  # default: the machine's hostname
    backend: Literal["file", "nbd", "memory"] = "file"
    backend_name: str = "file"  # Cinder's volume_backend_name (volume types may ask for it)
    pool_dir: Path | None = None  # default: <data_dir>/volumes
    volume_format: Literal["raw", "qcow2"] = "raw"
    # what the pool reports: capacity_gb (0 = the file system's size), thin provisioning
    capacity_gb: int = Field(default=0, ge=0)
    max_over_subscription_ratio: float = Field(default=20.0, gt=0)
    reserved_percentage: int = Field(default=0, ge=0, le=100)
    # NBD exports (backend "nbd"): address and port range qemu-nbd listens on
    nbd_host: str = "127.0.0.1"
    nbd_port_min: int = Field(default=10809, ge=1, le=65535)
    nbd_port_max: int = Field(default=10909, ge=1, le=65535)
    backup_dir: Path | None = None  # default: <data_dir>/volume-backups
    backup_store: Literal["directory", "memory"] = "directory"
    default_volume_type: str = "__DEFAULT__"
    default_availability_zone: str = "nova"
    max_limit: int = Field(default=1000, ge=1)
    heartbeat_interval: float = Field(default=10.0, gt=0)
    service_down_time: float = Field(default=60.0, gt=0)
    policy_file: Path | None = None
    quotas: VolumeQuotaConfig = Field(default_factory=VolumeQuotaConfig)


class NetworkQuotaConfig(_Section):
    """Default per-project network quotas (Neutron's defaults; -1 is unlimited)."""

    network: int = Field(default=100, ge=-1)
    subnet: int = Field(default=100, ge=-1)
    port: int = Field(default=500, ge=-1)
    router: int = Field(default=10, ge=-1)
    floatingip: int = Field(default=50, ge=-1)
    security_group: int = Field(default=10, ge=-1)
    security_group_rule: int = Field(default=100, ge=-1)


class NetworkConfig(_Section):
    """The network service (Neutron v2.0 API and the RPC server its agents talk to)."""

    # ``stackling up`` creates ``public`` (flat, external, on this host-only range), and for
    # the demo project ``private`` + its subnet + ``router1`` with its gateway on public
    bootstrap: bool = True
    public_physical_network: str = "public"
    public_cidr: str = "172.24.4.0/24"
    public_gateway: str | None = "172.24.4.1"
    public_pool: tuple[str, str] | None = None  # default: the whole range but the gateway
    private_cidr: str = "10.0.0.0/26"
    default_mtu: int = Field(default=1450, ge=68)
    external_mtu: int = Field(default=1500, ge=68)
    vni_min: int = Field(default=1, ge=1)
    vni_max: int = Field(default=65535, ge=1)
    base_mac: str = "fa:16:3e:00:00:00"
    dns_domain: str = "openstacklocal."
    max_limit: int = Field(default=1000, ge=1)
    # an agent silent this long is shown dead (``alive: false``) in /v2.0/agents
    agent_down_time: float = Field(default=75.0, gt=0)
    # HostStateChanged fanouts are coalesced over this many seconds
    notify_delay: float = Field(default=0.05, ge=0)
    policy_file: Path | None = None
    quotas: NetworkQuotaConfig = Field(default_factory=NetworkQuotaConfig)


class NetworkAgentConfig(_Section):
    """This node's network agent (L2/DHCP/L3/metadata) and its data plane."""

    host: str | None = None  # default: the compute host name, else the machine's hostname
    roles: list[str] = Field(default_factory=lambda: ["l2", "dhcp", "l3"])
    tunnel_ip: str | None = None  # VXLAN endpoint of this node (multi-node only)
    # physical network name -> existing host bridge (flat / external networks)
    physical_bridges: dict[str, str] = Field(default_factory=lambda: {"public": "br-ex"})
    # with the linuxbridge data plane: create the public network's host bridge
    # (physical_bridges[network.public_physical_network]) with the public gateway on it
    manage_external_bridge: bool = True
    netns_prefix: str = ""  # before qdhcp-/qrouter- (tests set their own)
    # the compute metadata service (default <public url>/metadata; the shared secret is
    # [metadata] shared_secret)
    metadata_url: str | None = None
    heartbeat_interval: float = Field(default=10.0, gt=0)
    resync_interval: float = Field(default=60.0, gt=0)
    tap_poll_interval: float = Field(default=0.5, gt=0)
    dhcp_lease_time: int = Field(default=86400, ge=120)


class AuthConfig(_Section):
    """How non-identity services validate tokens (the keystonemiddleware part)."""

    cache_ttl: float = Field(default=300.0, ge=0)
    cache_size: int = Field(default=10000, ge=0)
    # split deployment (``stackling serve <service>`` without identity, ``stackling node``):
    # identity's root URL, e.g. http://controller:8780/identity; the service users'
    # passwords come from DATA_DIR/service-users.yaml, copied from the identity node
    identity_url: str | None = None


class LogConfig(_Section):
    level: str = "INFO"
    json_format: bool = Field(default=False, alias="json")


class Config(_Section):
    data_dir: Path = Field(default_factory=default_data_dir)
    region: str = "RegionOne"
    virt: Literal["qemu", "fake"] = "fake"
    dataplane: Literal["linuxbridge", "noop"] = "noop"
    policy_file: Path | None = None
    api: ApiConfig = Field(default_factory=ApiConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    bus: BusConfig = Field(default_factory=BusConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    image: ImageConfig = Field(default_factory=ImageConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    network_agent: NetworkAgentConfig = Field(default_factory=NetworkAgentConfig)
    volume: VolumeConfig = Field(default_factory=VolumeConfig)
    qemu: QemuConfig = Field(default_factory=QemuConfig)
    metadata: MetadataConfig = Field(default_factory=MetadataConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    log: LogConfig = Field(default_factory=LogConfig)

    def database_url(self, service: str) -> str:
        return self.database.url.format(service=service.replace("-", "_"), data_dir=self.data_dir)

    def public_url(self) -> str:
        if self.api.public_url:
            return self.api.public_url.rstrip("/")
        host = self.api.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.api.port}"

    def key_repository(self) -> Path:
        return self.identity.key_repository or (self.data_dir / "fernet-keys")


def _set_path(tree: dict[str, Any], keys: list[str], value: str) -> None:
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ValueError(f"config key {'.'.join(keys)} conflicts with a scalar")
        node = child
    node[keys[-1]] = value


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__") if k]
        if keys:
            _set_path(tree, keys, value)
    return tree


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build a Config from (in rising priority) defaults, a TOML file, env, explicit overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    data = _merge(data, env_overrides(env if env is not None else {}))
    if overrides:
        data = _merge(data, overrides)
    return Config.model_validate(data)
