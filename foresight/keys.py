"""``foresight keys create|list|update|rotate|revoke|events``: manage API keys in the server's store.

Uses the same settings as ``foresight serve`` (``--config``, ``FORESIGHT_*``) to find the store and
the HMAC secret, so keys made here are the keys the server accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys

from server.auth import display_prefix, generate_key, hash_key, load_secret


def add_keys(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("keys", help="create, list and revoke API keys",
                          description="API keys for /v1/*. The store keeps only an HMAC of each key.")
    keys.add_argument("--config", help="settings file used by `foresight serve` (store and secret)")
    keys.add_argument("--database-url", help="outcome/key store (default: the settings')")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    c = ksub.add_parser("create", help="create a key and print it once on stdout")
    c.add_argument("--name", required=True, help="a unique name for the key (who or what uses it)")
    c.add_argument("--rpm", type=int, help="requests per minute allowed (default: unlimited)")
    c.add_argument("--tpm", type=int, help="tokens per minute allowed (default: unlimited)")
    c.add_argument("--role", choices=("app", "admin"), default="app",
                   help="app: plans, reports and reads in its domains only (default); admin: everything, keys too")
    c.add_argument("--domains", type=_domains, help="comma-separated domains the key may use ('*': every "
                                                    "domain); default: one domain named after the key")
    c.add_argument("--expires", type=_expiry, help="when the key stops working: an ISO date or time (UTC), "
                                                   "or a duration such as 30d or 12h")
    _class_flags(c)
    c.set_defaults(func=_create)
    ksub.add_parser("list", help="list keys (names, prefixes, roles, domains, classes, limits; never the keys)"
                    ).set_defaults(func=_list)
    u = ksub.add_parser("update", help="change a key's class, share weight, sharing group, domains or limits in "
                                       "place (its secret untouched; recorded in the key's events)")
    u.add_argument("name", help="the key's name")
    _class_flags(u, defaults=False)
    u.add_argument("--own-app", action="store_true", help="leave its sharing group: the key is its own app again")
    u.add_argument("--domains", type=_domains, help="comma-separated domains the key may use from now on")
    u.add_argument("--rpm", type=int, help="requests per minute allowed")
    u.add_argument("--tpm", type=int, help="tokens per minute allowed")
    u.add_argument("--expires", type=_expiry, help="when the key stops working (ISO date or time, or a duration)")
    u.set_defaults(func=_update)
    o = ksub.add_parser("rotate", help="give a key a new secret (same name and scopes); prints it once")
    o.add_argument("--name", required=True)
    o.add_argument("--grace", type=_expiry_seconds, default=3600.0,
                   help="how long the old secret keeps working, e.g. 1h (default), 0 for none")
    o.set_defaults(func=_rotate)
    r = ksub.add_parser("revoke", help="revoke a key by name")
    r.add_argument("--name", required=True)
    r.set_defaults(func=_revoke)
    ksub.add_parser("events", help="the log of keys made, updated, rotated and revoked").set_defaults(func=_events)

    def _help(_args: argparse.Namespace) -> int:
        keys.print_help()
        return 2

    keys.set_defaults(func=_help)


def _class_flags(p: argparse.ArgumentParser, defaults: bool = True) -> None:
    p.add_argument("--priority-class", choices=("interactive", "batch"), default="interactive" if defaults else None,
                   help="interactive: served first (the default for a new key); batch: capped at batch_max_share "
                        "of the engine's sequences")
    p.add_argument("--share-weight", type=float, default=1.0 if defaults else None,
                   help="its app's share of its class while other apps of the class wait (default 1)")
    p.add_argument("--sharing-group", help="the app the key counts as (keys of one group share a prefix cache "
                                           "and a fair share); default: the key's own name")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _domains(text: str) -> list[str]:
    import re

    names = [d.strip() for d in text.split(",") if d.strip()]
    bad = [d for d in names if not re.fullmatch(r"\*|[A-Za-z0-9_.:-]{1,128}", d)]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"not a domain list: {text!r} (names of letters, digits, _.:- or '*')")
    return names


def _expiry_seconds(text: str) -> float:
    try:
        return float(text[:-1]) * _UNITS[text[-1]] if text and text[-1] in _UNITS else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 0, 90s, 30m, 12h, 30d)") from None


def _expiry(text: str) -> dt.datetime:
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=_expiry_seconds(text))
    try:
        return at.astimezone(dt.UTC) if at.tzinfo else at.replace(tzinfo=dt.UTC)
    except (OverflowError, ValueError):
        raise argparse.ArgumentTypeError(f"not a time: {text!r}") from None


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from server.config import load_settings

    return load_settings(args.config, database_url=args.database_url)


async def _with_store(args: argparse.Namespace, action):  # type: ignore[no-untyped-def]
    from server.store import Store

    store = Store(_settings(args).store_url)
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()


def _fail(message: str) -> int:
    print(f"foresight: {message}", file=sys.stderr)
    return 1


def _create(args: argparse.Namespace) -> int:
    from server.store import KeyExists, StoreUnavailable

    if not args.name.strip() or len(args.name) > 128:
        return _fail("--name must be 1 to 128 characters")
    if args.name == "anonymous":
        return _fail("--name 'anonymous' is reserved for calls made without a key (auth off)")
    for flag in ("rpm", "tpm"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            return _fail(f"--{flag} must be at least 1")
    bad = _bad_class_flags(args)
    if bad:
        return _fail(bad)
    settings = _settings(args)
    secret = load_secret(settings.auth_secret, settings.secret_path)
    key = generate_key()
    try:
        asyncio.run(_with_store(args, lambda s: s.create_key(args.name, display_prefix(key), hash_key(key, secret),
                                                             requests_per_minute=args.rpm,
                                                             tokens_per_minute=args.tpm, role=args.role,
                                                             domains=args.domains, expires_at=args.expires,
                                                             priority_class=args.priority_class,
                                                             share_weight=args.share_weight,
                                                             sharing_group=args.sharing_group)))
    except (KeyExists, StoreUnavailable) as exc:
        return _fail(str(exc))
    print(key)
    print(f"created key {args.name!r}; it is shown only once: store it now", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    from server.store import StoreUnavailable

    try:
        rows = asyncio.run(_with_store(args, lambda s: s.list_keys()))
    except StoreUnavailable as exc:
        return _fail(str(exc))
    print(f"{'name':<20}{'prefix':<12}{'role':<7}{'domains':<22}{'class':<13}{'weight':>7}  {'app':<16}"
          f"{'created':<18}{'status':<10}{'rpm':>7}{'tpm':>9}")
    now = dt.datetime.now(dt.UTC)
    for k in rows:
        expires = k.expires_at.replace(tzinfo=k.expires_at.tzinfo or dt.UTC) if k.expires_at else None
        status = "revoked" if k.revoked_at else "expired" if expires and expires <= now else "active"
        print(f"{k.name:<20}{k.prefix + '…':<12}{k.role:<7}{','.join(k.domains)[:21]:<22}{k.priority_class:<13}"
              f"{k.share_weight:>7g}  {k.app[:15]:<16}{k.created_at:%Y-%m-%d %H:%M}  {status:<10}"
              f"{k.requests_per_minute or '-':>7}{k.tokens_per_minute or '-':>9}")
    return 0


def _bad_class_flags(args: argparse.Namespace) -> str | None:
    import re

    if args.share_weight is not None and not 0 < args.share_weight <= 1000:
        return "--share-weight must be above 0 and at most 1000"
    if args.sharing_group is not None and not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", args.sharing_group):
        return "--sharing-group must be 1 to 128 letters, digits or _.:-"
    return None


def _update(args: argparse.Namespace) -> int:
    from server.store import StoreUnavailable

    bad = _bad_class_flags(args)
    if bad:
        return _fail(bad)
    if args.own_app and args.sharing_group is not None:
        return _fail("give --sharing-group or --own-app, not both")
    for flag in ("rpm", "tpm"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            return _fail(f"--{flag} must be at least 1")
    flags = {"priority_class": args.priority_class, "share_weight": args.share_weight,
             "sharing_group": args.sharing_group, "domains": args.domains, "requests_per_minute": args.rpm,
             "tokens_per_minute": args.tpm, "expires_at": args.expires}
    changes = {k: v for k, v in flags.items() if v is not None}
    if args.own_app:
        changes["sharing_group"] = None
    if not changes:
        return _fail("nothing to change: give at least one of --priority-class, --share-weight, --sharing-group, "
                     "--own-app, --domains, --rpm, --tpm, --expires")
    try:
        record = asyncio.run(_with_store(args, lambda s: s.update_key(args.name, changes)))
    except StoreUnavailable as exc:
        return _fail(str(exc))
    if record is None:
        return _fail(f"no active key named {args.name!r}")
    print(f"updated key {args.name!r}: {', '.join(f'{k} {v}' for k, v in changes.items())} (servers see it within "
          "auth_cache_ttl_s)", file=sys.stderr)
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from server.store import StoreUnavailable

    settings = _settings(args)
    secret = load_secret(settings.auth_secret, settings.secret_path)
    key = generate_key()
    try:
        done = asyncio.run(_with_store(args, lambda s: s.rotate_key(args.name, display_prefix(key),
                                                                    hash_key(key, secret), grace_s=args.grace)))
    except StoreUnavailable as exc:
        return _fail(str(exc))
    if done is None:
        return _fail(f"no active key named {args.name!r}")
    print(key)
    print(f"rotated key {args.name!r}: the old secret works for {args.grace:.0f} s more; the new one is shown "
          "only once", file=sys.stderr)
    return 0


def _events(args: argparse.Namespace) -> int:
    from server.store import StoreUnavailable

    try:
        events = asyncio.run(_with_store(args, lambda s: s.key_events(1000)))
    except StoreUnavailable as exc:
        return _fail(str(exc))
    for e in reversed(events):
        detail = ""
        if e.action == "updated" and e.detail:
            detail = "  " + ", ".join(f"{k}: {v.get('from')} -> {v.get('to')}" for k, v in e.detail.items())
        print(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.action:<8} {e.key_name:<20} by {e.actor or '(command line)'}{detail}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from server.store import StoreUnavailable

    try:
        done = asyncio.run(_with_store(args, lambda s: s.revoke_key(args.name)))
    except StoreUnavailable as exc:
        return _fail(str(exc))
    if not done:
        return _fail(f"no active key named {args.name!r}")
    print(f"revoked key {args.name!r} (servers stop accepting it within auth_cache_ttl_s)", file=sys.stderr)
    return 0
