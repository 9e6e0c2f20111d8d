"""``voxline keys list|create|revoke``: the operator's key management, straight on the
database (no server needs to run, no key needed to make the first one)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from api.keys.scopes import Scope


def add_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create an API key (printed once)")
    create.add_argument("--name", default="", help="a label for the key")
    create.add_argument(
        "--scope",
        choices=[s.value for s in Scope],
        default=Scope.ADMIN.value,
        help="read: GET only; calls: also calls and campaigns; admin: everything (default)",
    )
    group = create.add_mutually_exclusive_group()
    group.add_argument("--org", help="organization id (default: the first organization)")
    group.add_argument("--new-org", metavar="NAME", help="create a new organization for the key")
    listing = keys_sub.add_parser("list", help="list keys (prefix, scope, last used; no secrets)")
    listing.add_argument("--org", help="only this organization's keys")
    revoke = keys_sub.add_parser("revoke", help="revoke a key at once (open sockets close too)")
    revoke.add_argument("key_id")


async def run(args: argparse.Namespace) -> int:
    from api.db.engine import create_engine, migrate, session_factory
    from api.settings import ServerSettings

    settings = ServerSettings()
    url = settings.resolved_database_url
    await migrate(url)
    db_engine = create_engine(url)
    sessions = session_factory(db_engine)
    try:
        if args.keys_command == "list":
            return await _list(sessions, args)
        if args.keys_command == "revoke":
            return await _revoke(sessions, args)
        return await _create(sessions, settings, args)
    finally:
        await db_engine.dispose()


async def _create(sessions: Any, settings: Any, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from api.auth import create_key, create_organization
    from api.bootstrap import ensure_defaults
    from api.db.models import Organization

    async with sessions() as db:
        if args.new_org:
            org = await create_organization(db, args.new_org)
        elif args.org:
            org = await db.get(Organization, args.org)
            if org is None:
                print(f"voxline keys: no organization {args.org!r}", file=sys.stderr)
                return 2
        else:
            await ensure_defaults(sessions, settings.data_dir)
            org = (
                (await db.execute(select(Organization).order_by(Organization.created_at)))
                .scalars()
                .first()
            )
        row, key = await create_key(db, org.id, args.name, args.scope)
        await db.commit()
    print(f"organization {org.id} ({org.name})\nkey id {row.id} (scope {row.scope})\n\n{key}\n")
    print("Keep it safe: only its hash is stored; it cannot be shown again.")
    return 0


async def _list(sessions: Any, args: argparse.Namespace) -> int:
    from api.keys.service import key_out, list_keys

    async with sessions() as db:
        rows = await list_keys(db, args.org)
    print(f"{'id':26} {'org':26} {'scope':6} {'prefix':11} {'last used':25} {'revoked':25} name")
    for row in rows:
        out = key_out(row)
        last = out["last_used_at"].isoformat() if out["last_used_at"] else "never"  # type: ignore[attr-defined]
        revoked = out["revoked_at"].isoformat() if out["revoked_at"] else "-"  # type: ignore[attr-defined]
        print(
            f"{row.id:26} {row.org_id:26} {row.scope:6} {row.prefix:11} {last:25} "
            f"{revoked:25} {row.name}"
        )
    return 0


async def _revoke(sessions: Any, args: argparse.Namespace) -> int:
    from api.keys.service import revoke_key

    async with sessions() as db:
        row = await revoke_key(db, None, args.key_id)
        if row is None:
            print(f"voxline keys: no key {args.key_id!r}", file=sys.stderr)
            return 2
        await db.commit()
    print(f"key {row.id} revoked (organization {row.org_id})")
    return 0
