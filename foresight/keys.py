"""``foresight keys create|list|revoke``: manage API keys in the server's store.

Uses the same settings as ``foresight serve`` (``--config``, ``FORESIGHT_*``) to find the store and
the HMAC secret, so keys made here are the keys the server accepts.
"""

from __future__ import annotations

import argparse
import asyncio
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
    c.set_defaults(func=_create)
    ksub.add_parser("list", help="list keys (names, prefixes, limits; never the keys)").set_defaults(func=_list)
    r = ksub.add_parser("revoke", help="revoke a key by name")
    r.add_argument("--name", required=True)
    r.set_defaults(func=_revoke)

    def _help(_args: argparse.Namespace) -> int:
        keys.print_help()
        return 2

    keys.set_defaults(func=_help)


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
    for flag in ("rpm", "tpm"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            return _fail(f"--{flag} must be at least 1")
    settings = _settings(args)
    secret = load_secret(settings.auth_secret, settings.secret_path)
    key = generate_key()
    try:
        asyncio.run(_with_store(args, lambda s: s.create_key(args.name, display_prefix(key), hash_key(key, secret),
                                                             requests_per_minute=args.rpm,
                                                             tokens_per_minute=args.tpm)))
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
    print(f"{'name':<24}{'prefix':<12}{'created':<22}{'status':<10}{'rpm':>8}{'tpm':>10}")
    for k in rows:
        status = "revoked" if k.revoked_at else "active"
        print(f"{k.name:<24}{k.prefix + '…':<12}{k.created_at:%Y-%m-%d %H:%M:%S}   {status:<10}"
              f"{k.requests_per_minute or '-':>8}{k.tokens_per_minute or '-':>10}")
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
