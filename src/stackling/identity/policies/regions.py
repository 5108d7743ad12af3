"""Regions: anyone authenticated may read them (Keystone's ``""``); admins change them."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN

RULES = {
    "identity:get_region": "",
    "identity:list_regions": "",
    "identity:create_region": ADMIN,
    "identity:update_region": ADMIN,
    "identity:delete_region": ADMIN,
}
