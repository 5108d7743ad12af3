"""Domain-specific configuration (Keystone's ``domain_config_api``).

A domain may carry its own ``identity`` and ``ldap`` options (the ones Keystone whitelists).
They are stored and served; stackling's identity backend is SQL only, so they do not switch
the domain to LDAP. ``ldap.password`` is sensitive: stored, never returned.

Errors follow Keystone: an unsupported group or option, or a malformed body, is 403
("Invalid domain specific configuration"); a group or option the domain does not have is 404.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import Forbidden, NotFound
from stackling.identity.models import DomainConfig, Project
from stackling.identity.service.store import Store

# The options a domain may override, with Keystone's defaults (shown by .../config/default).
DEFAULTS: dict[str, dict[str, Any]] = {
    "identity": {"driver": "sql", "list_limit": None},
    "ldap": {
        "url": "ldap://localhost", "user": None, "suffix": "cn=example,cn=com",
        "query_scope": "one", "page_size": 0, "alias_dereferencing": "default",
        "debug_level": None, "chase_referrals": None, "user_tree_dn": None,
        "user_filter": None, "user_objectclass": "inetOrgPerson", "user_id_attribute": "cn",
        "user_name_attribute": "sn", "user_mail_attribute": "mail",
        "user_description_attribute": "description", "user_pass_attribute": "userPassword",
        "user_enabled_attribute": "enabled", "user_enabled_invert": False,
        "user_enabled_mask": 0, "user_enabled_default": "True",
        "user_attribute_ignore": ["default_project_id"],
        "user_default_project_id_attribute": None, "user_enabled_emulation": False,
        "user_enabled_emulation_dn": None, "user_enabled_emulation_use_group_config": False,
        "user_additional_attribute_mapping": [], "group_tree_dn": None, "group_filter": None,
        "group_objectclass": "groupOfNames", "group_id_attribute": "cn",
        "group_name_attribute": "ou", "group_members_are_ids": False,
        "group_member_attribute": "member", "group_desc_attribute": "description",
        "group_attribute_ignore": [], "group_additional_attribute_mapping": [],
        "tls_cacertfile": None, "tls_cacertdir": None, "use_tls": False,
        "tls_req_cert": "demand", "use_pool": True, "pool_size": 10, "pool_retry_max": 3,
        "pool_retry_delay": 0.1, "pool_connection_timeout": -1,
        "pool_connection_lifetime": 600, "use_auth_pool": True, "auth_pool_size": 100,
        "auth_pool_connection_lifetime": 60,
    },
}
SENSITIVE: dict[str, tuple[str, ...]] = {"identity": (), "ldap": ("password",)}
SECURITY_COMPLIANCE = "security_compliance"
READABLE_COMPLIANCE = ("password_regex", "password_regex_description")
DEFAULT_DOMAIN = "default"


def invalid(reason: str) -> Forbidden:
    return Forbidden(f"Invalid domain specific configuration: {reason}.")


def _not_found(domain_id: str, group: str | None, option: str | None) -> NotFound:
    if option:
        what = f"option {option} in group {group}"
    elif group:
        what = f"group {group}"
    else:
        what = "any options"
    return NotFound(f"Could not find {what} in domain configuration for domain {domain_id}.")


def check_group_option(group: str | None, option: str | None) -> None:
    if group is None:
        return
    if group not in DEFAULTS and group not in SENSITIVE:
        raise invalid(f"Group {group} is not supported for domain specific configurations")
    if option is not None and option not in DEFAULTS.get(group, {}) \
            and option not in SENSITIVE.get(group, ()):
        raise invalid(f"Option {option} in group {group} is not supported for domain "
                      "specific configurations")


def _check_config(config: Any) -> dict[str, dict[str, Any]]:
    if not config:
        raise invalid("No options specified")
    if not isinstance(config, dict):
        raise invalid("The config should be a dictionary of groups")
    for group, options in config.items():
        if not options or not isinstance(options, dict):
            raise invalid(f"The value of group {group} specified in the config should be a "
                          "dictionary of options")
        for option in options:
            check_group_option(group, option)
    return config


def _is_sensitive(group: str, option: str) -> bool:
    return option in SENSITIVE.get(group, ())


async def require_domain(session: AsyncSession, domain_id: str) -> None:
    domain = await session.get(Project, domain_id)
    if domain is None or not domain.is_domain:
        raise NotFound(f"Could not find domain: {domain_id}.")


async def domain_exists(store: Store, domain_id: str) -> bool:
    async with store.read() as session:
        domain = await session.get(Project, domain_id)
        return domain is not None and domain.is_domain


async def _rows(session: AsyncSession, domain_id: str, group: str | None = None,
                option: str | None = None) -> list[DomainConfig]:
    query = select(DomainConfig).where(DomainConfig.domain_id == domain_id)
    if group is not None:
        query = query.where(DomainConfig.group == group)
        if option is not None:
            query = query.where(DomainConfig.option == option)
    return list((await session.scalars(query.order_by(DomainConfig.group,
                                                      DomainConfig.option))).all())


def _as_config(rows: list[DomainConfig], sensitive: bool = False) -> dict[str, dict[str, Any]]:
    config: dict[str, dict[str, Any]] = {}
    for row in rows:
        if sensitive or not _is_sensitive(row.group, row.option):
            config.setdefault(row.group, {})[row.option] = row.value
    return config


async def get_config(store: Store, domain_id: str, group: str | None = None,
                     option: str | None = None) -> dict[str, Any]:
    """The domain's (non-sensitive) options: all, one group, or ``{option: value}``."""
    check_group_option(group, option)
    async with store.read() as session:
        await require_domain(session, domain_id)
        config = _as_config(await _rows(session, domain_id, group, option))
    if not config:
        raise _not_found(domain_id, group, option)
    if option is not None and group is not None:
        return {option: config[group][option]}
    return config


def security_compliance(domain_id: str, option: str | None,
                        settings: dict[str, Any]) -> dict[str, Any]:
    """The default domain's password-regex settings (readable by any authenticated user)."""
    if domain_id != DEFAULT_DOMAIN:
        raise invalid("Reading security compliance information for any domain other than the "
                      "default domain is not allowed or supported")
    if option is not None:
        if option not in READABLE_COMPLIANCE:
            raise invalid("Reading security compliance values other than password_regex and "
                          "password_regex_description is not allowed")
        return {option: settings.get(option)}
    return {SECURITY_COMPLIANCE: {k: settings.get(k) for k in READABLE_COMPLIANCE}}


async def create_config(store: Store, domain_id: str, config: Any
                        ) -> tuple[dict[str, Any], bool]:
    """Replace the domain's whole config; returns it and whether the domain had one."""
    config = _check_config(config)
    async with store.write() as session:
        await require_domain(session, domain_id)
        had = bool(await _rows(session, domain_id))
        await session.execute(delete(DomainConfig).where(DomainConfig.domain_id == domain_id))
        for group, options in config.items():
            for option, value in options.items():
                session.add(DomainConfig(domain_id=domain_id, group=group, option=option,
                                         value=value))
        await session.flush()
        return _as_config(await _rows(session, domain_id)), had


def _check_update(config: dict[str, Any], group: str | None, option: str | None) -> None:
    check_group_option(group, option)
    if group is None:
        return
    if len(config) != 1 or (option is not None and len(config.get(group) or {}) != 1):
        if option is not None:
            raise invalid(f"Trying to update option {option} in group {group}, so that, and "
                          "only that, option must be specified  in the config")
        raise invalid(f"Trying to update group {group}, so that, and only that, group must "
                      "be specified in the config")
    if group not in config:
        raise invalid(f"request to update group {group}, but config provided contains group "
                      f"{next(iter(config))} instead")
    if option is not None and option not in config[group]:
        raise invalid(f"Trying to update option {option} in group {group}, but config "
                      f"provided contains option {next(iter(config[group]))} instead")


async def update_config(store: Store, domain_id: str, config: Any, group: str | None = None,
                        option: str | None = None) -> dict[str, Any]:
    """Merge ``config`` into the domain's options. With ``group`` (and ``option``) the body
    must hold exactly that group (option), which must already exist (404 otherwise)."""
    if group is not None and option is not None and isinstance(config, dict):
        config = {group: config}
    config = _check_config(config)
    _check_update(config, group, option)
    async with store.write() as session:
        await require_domain(session, domain_id)
        if group is not None and not await _rows(session, domain_id, group, option):
            raise _not_found(domain_id, group, option)
        for grp, options in config.items():
            for opt, value in options.items():
                row = await session.get(DomainConfig, (domain_id, grp, opt))
                if row is None:
                    session.add(DomainConfig(domain_id=domain_id, group=grp, option=opt,
                                             value=value))
                else:
                    row.value = value
        await session.flush()
        result = _as_config(await _rows(session, domain_id))
    if not result:
        raise _not_found(domain_id, None, None)
    return result


async def delete_config(store: Store, domain_id: str, group: str | None = None,
                        option: str | None = None) -> None:
    check_group_option(group, option)
    async with store.write() as session:
        await require_domain(session, domain_id)
        if group is not None:
            current = _as_config(await _rows(session, domain_id, group), sensitive=True)
            options = current.get(group)
            if not options or (option is not None and not options.get(option)):
                raise _not_found(domain_id, group, option)
        query = delete(DomainConfig).where(DomainConfig.domain_id == domain_id)
        if group is not None:
            query = query.where(DomainConfig.group == group)
            if option is not None:
                query = query.where(DomainConfig.option == option)
        await session.execute(query)


def default_config(group: str | None = None, option: str | None = None) -> dict[str, Any]:
    check_group_option(group, option)
    if group is None:
        return {g: dict(opts) for g, opts in DEFAULTS.items()}
    if option is None:
        return {group: dict(DEFAULTS.get(group, {}))}
    if option not in DEFAULTS.get(group, {}):
        raise invalid(f"Reading the default for option {option} in group {group} is not "
                      "supported")
    return {option: DEFAULTS[group][option]}
