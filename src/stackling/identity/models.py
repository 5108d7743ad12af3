"""Identity tables (the Keystone data model, kept in the identity service's own MetaData).

Domains live in the ``project`` table with ``is_domain`` set, as in Keystone, so domain and
project ids share one namespace. A domain's ``domain_id`` is the ``ROOT_DOMAIN`` sentinel
(a real value, so the (domain_id, name) uniqueness applies to domain names too).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from stackling.db.base import UTCDateTime, make_metadata

ROOT_DOMAIN = "<<keystone.domain.root>>"
GLOBAL_ROLE_DOMAIN = "<<null>>"


class Base(DeclarativeBase):
    metadata = make_metadata()


def _extra() -> Mapped[dict[str, Any]]:
    return mapped_column(JSON, default=dict, nullable=False)


class Region(Base):
    __tablename__ = "region"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str] = mapped_column(String(255), default="", nullable=False)
    parent_region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    extra: Mapped[dict[str, Any]] = _extra()


class Service(Base):
    __tablename__ = "service"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(255), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    extra: Mapped[dict[str, Any]] = _extra()  # name, description, other attributes


class Endpoint(Base):
    __tablename__ = "endpoint"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("service.id"), nullable=False, index=True
    )
    interface: Mapped[str] = mapped_column(String(8), nullable=False)
    region_id: Mapped[str | None] = mapped_column(
        String(255), ForeignKey("region.id"), nullable=True
    )
    url: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    extra: Mapped[dict[str, Any]] = _extra()


class Project(Base):
    __tablename__ = "project"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    domain_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    is_domain: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    extra: Mapped[dict[str, Any]] = _extra()


class ProjectTag(Base):
    __tablename__ = "project_tag"
    project_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(255), primary_key=True)


class User(Base):
    __tablename__ = "user"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    domain_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    default_project_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    password_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    password_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # whether the current password was set by its owner (POST /users/{id}/password): only
    # those are held to the minimum password age, as in Keystone
    password_self_service: Mapped[bool] = mapped_column(Boolean, default=False,
                                                        nullable=False)
    # hashes of earlier passwords, oldest first (security_compliance.unique_last_password_count)
    password_history: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    failed_auth_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    failed_auth_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_active_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    extra: Mapped[dict[str, Any]] = _extra()


class Group(Base):
    __tablename__ = "group"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    domain_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    extra: Mapped[dict[str, Any]] = _extra()


class UserGroupMembership(Base):
    __tablename__ = "user_group_membership"
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("group.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Role(Base):
    __tablename__ = "role"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    domain_id: Mapped[str] = mapped_column(String(64), nullable=False, default=GLOBAL_ROLE_DOMAIN)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    extra: Mapped[dict[str, Any]] = _extra()


class ImpliedRole(Base):
    __tablename__ = "implied_role"
    prior_role_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("role.id", ondelete="CASCADE"), primary_key=True
    )
    implied_role_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("role.id", ondelete="CASCADE"), primary_key=True
    )


# Assignment types, as Keystone names them.
USER_PROJECT = "UserProject"
GROUP_PROJECT = "GroupProject"
USER_DOMAIN = "UserDomain"
GROUP_DOMAIN = "GroupDomain"
USER_SYSTEM = "UserSystem"
GROUP_SYSTEM = "GroupSystem"
SYSTEM_TARGET = "system"


class Assignment(Base):
    """Role assignments: actor (user/group) has role on target (project/domain/system)."""

    __tablename__ = "assignment"
    __table_args__ = (
        Index("ix_assignment_actor", "actor_id"),
        Index("ix_assignment_target", "target_id"),
        Index("ix_assignment_role", "role_id"),
    )
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    actor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    inherited: Mapped[bool] = mapped_column(Boolean, primary_key=True, default=False)


class ApplicationCredential(Base):
    __tablename__ = "application_credential"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    system: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unrestricted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    role_ids: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    access_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class AccessRule(Base):
    """An application-credential access rule. Owned by a user and shared by that user's
    application credentials (which keep a copy of the rules they use); it outlives them
    until deleted, and cannot be deleted while one still uses it (as in Keystone)."""

    __tablename__ = "access_rule"
    __table_args__ = (UniqueConstraint("user_id", "service", "path", "method"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    service: Mapped[str] = mapped_column(String(64), nullable=False)
    path: Mapped[str] = mapped_column(String(255), nullable=False)
    method: Mapped[str] = mapped_column(String(16), nullable=False)


class Credential(Base):
    """User credentials (ec2, totp, cert, ...). The blob is encrypted at rest (Fernet)."""

    __tablename__ = "credential"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    type: Mapped[str] = mapped_column(String(255), nullable=False)
    encrypted_blob: Mapped[str] = mapped_column(Text, nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    extra: Mapped[dict[str, Any]] = _extra()


class RevocationEvent(Base):
    """A token revocation rule: every non-null attribute must match a token for it to be
    revoked, and the token must have been issued before ``issued_before``."""

    __tablename__ = "revocation_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    domain_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    audit_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    audit_chain_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    app_cred_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    issued_before: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)


class Policy(Base):
    """The v3 /policies blobs (stored, never enforced, as in Keystone)."""

    __tablename__ = "policy"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(255), nullable=False)
    blob: Mapped[str] = mapped_column(Text, nullable=False)
    extra: Mapped[dict[str, Any]] = _extra()


class RegisteredLimit(Base):
    __tablename__ = "registered_limit"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(64), nullable=False)
    region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    resource_name: Mapped[str] = mapped_column(String(255), nullable=False)
    default_limit: Mapped[int] = mapped_column(Integer, nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)


class Limit(Base):
    __tablename__ = "limit"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    domain_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    service_id: Mapped[str] = mapped_column(String(64), nullable=False)
    region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    resource_name: Mapped[str] = mapped_column(String(255), nullable=False)
    resource_limit: Mapped[int] = mapped_column(Integer, nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)


class EndpointGroup(Base):
    __tablename__ = "endpoint_group"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)


class ProjectEndpoint(Base):
    __tablename__ = "project_endpoint"
    endpoint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class ProjectEndpointGroup(Base):
    __tablename__ = "project_endpoint_group"
    endpoint_group_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class DomainConfig(Base):
    __tablename__ = "domain_config"
    domain_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    group: Mapped[str] = mapped_column(String(255), primary_key=True)
    option: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)


class Trust(Base):
    """OS-TRUST: the trustor delegates some of its roles on a project to the trustee.

    ``role_ids`` are the delegated roles as asked (implied roles are added when a token is
    made). A redelegated trust points at its parent with ``redelegated_trust_id``; deleting
    a trust deletes the trusts redelegated from it. ``remaining_uses`` is consumed by
    compare-and-swap (``UPDATE ... WHERE remaining_uses = seen``).
    """

    __tablename__ = "trust"
    __table_args__ = (UniqueConstraint("trustor_user_id", "trustee_user_id", "project_id",
                                       "impersonation", "expires_at"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    trustor_user_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    trustee_user_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    impersonation: Mapped[bool] = mapped_column(Boolean, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    remaining_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    redelegated_trust_id: Mapped[str | None] = mapped_column(String(64), nullable=True,
                                                             index=True)
    redelegation_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    role_ids: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    extra: Mapped[dict[str, Any]] = _extra()


class OAuthConsumer(Base):
    """OS-OAUTH1 consumer. The secret signs OAuth1 requests (HMAC-SHA1), so it cannot be a
    one-way hash: it is kept Fernet-encrypted with the credential keys."""

    __tablename__ = "oauth_consumer"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str | None] = mapped_column(String(64), nullable=True)
    encrypted_secret: Mapped[str] = mapped_column(Text, nullable=False)
    extra: Mapped[dict[str, Any]] = _extra()


class OAuthRequestToken(Base):
    __tablename__ = "oauth_request_token"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    encrypted_secret: Mapped[str] = mapped_column(Text, nullable=False)
    consumer_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    requested_project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    verifier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    authorizing_user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role_ids: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OAuthAccessToken(Base):
    __tablename__ = "oauth_access_token"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    encrypted_secret: Mapped[str] = mapped_column(Text, nullable=False)
    consumer_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    authorizing_user_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    role_ids: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
