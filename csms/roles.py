"""Operator roles: what each may do, for the management API and the console alike.

- viewer: reads everything but the money reports (reports and owners' statements);
- support: also sends commands, stops and cancels sessions, manages chargers and id tags;
- finance: also refunds, resolves reviews, asks again for owners' transfers, runs a
  reconciliation, reads reports and statements;
- admin: everything, users, API keys, tariffs, sites, owners and settings included.

Roles are not a ladder: support and finance each have what the other lacks. A route or page
names the one role it needs (`viewer`, `support`, `finance` or `admin`); `allows` says
whether a user's role has it: admin has every role, and every role has viewer's.
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["viewer", "support", "finance", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)


def allows(role: Role, needed: Role) -> bool:
    """Whether a user with `role` may do what needs `needed`."""
    return role == "admin" or needed == "viewer" or role == needed


def is_role(value: object) -> bool:
    return value in ROLES
