"""The request context: who is calling, with which scope and roles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a validated token says about the caller. Immutable; passed explicitly."""

    request_id: str = ""
    user_id: str | None = None
    user_name: str | None = None
    user_domain_id: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None  # domain scope
    domain_name: str | None = None
    system_scope: str | None = None  # "all" when system scoped
    roles: tuple[str, ...] = ()
    role_ids: tuple[str, ...] = ()
    audit_ids: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    is_service: bool = False
    token: str | None = field(default=None, repr=False)  # never logged
    application_credential_id: str | None = None
    #: the application credential's access rules: the only calls this token may make
    #: (None: no such restriction; see stackling.web.access_rules)
    access_rules: tuple[dict[str, Any], ...] | None = field(default=None, repr=False)
    expires_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def credentials(self) -> dict[str, Any]:
        """The dict policy rules are evaluated against (oslo.policy's creds)."""
        return {
            "user_id": self.user_id,
            "user_domain_id": self.user_domain_id,
            "project_id": self.project_id,
            "project_domain_id": self.project_domain_id,
            "domain_id": self.domain_id,
            "system_scope": self.system_scope,
            "roles": list(self.roles),
            "is_admin_project": True,
            "service_roles": ["service"] if self.is_service else [],
            "token": None,
        }
