"""Project tags: Keystone's ``/v3/projects/{id}/tags`` rules and the list filters on them.

Tags are unique per project, at most 80, each 1-255 characters without ``,`` or ``/``
(checked at the API); an immutable project refuses tag changes like any other change.
"""

from __future__ import annotations

from typing import Any

from stackling.common.errors import NotFound, ValidationError
from stackling.identity.service.identity import Identity
from stackling.identity.service.projects import require, tags_of, update


def tag_filter(refs: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    """``tags`` (all of), ``tags-any``, ``not-tags`` (not all of), ``not-tags-any`` (none of);
    each a comma-separated list."""
    def split(key: str) -> set[str] | None:
        return set(params[key].split(",")) if key in params else None

    all_of, any_of = split("tags"), split("tags-any")
    not_all, not_any = split("not-tags"), split("not-tags-any")
    out = []
    for ref in refs:
        have = set(ref.get("tags") or [])
        if all_of is not None and not all_of <= have:
            continue
        if any_of is not None and not any_of & have:
            continue
        if not_all is not None and not_all <= have:
            continue
        if not_any is not None and not_any & have:
            continue
        out.append(ref)
    return out


async def list_tags(svc: Identity, project_id: str) -> list[str]:
    async with svc.store.read() as session:
        await require(session, project_id)
        return (await tags_of(session, [project_id]))[project_id]


async def add_tag(svc: Identity, project_id: str, tag: str, max_tags: int) -> None:
    current = await list_tags(svc, project_id)
    if tag.strip() in current:
        raise ValidationError(f"Invalid input for field 'tags': {tag!r} is already a tag of "
                              "this project (tags must be unique).")
    if len(current) + 1 > max_tags:
        raise ValidationError(f"Invalid input for field 'tags': at most {max_tags} tags are "
                              "allowed.")
    await update(svc, project_id, {"tags": [*current, tag]})


async def remove_tag(svc: Identity, project_id: str, tag: str) -> None:
    current = await list_tags(svc, project_id)
    if tag not in current:
        raise NotFound(f"Could not find project tag: {tag}.")
    await update(svc, project_id, {"tags": [t for t in current if t != tag]})
