"""The ``tap-service`` command: serve, build the demo catalog, ingest, translate ADQL."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tap_service.config import Config


def _serve(args: argparse.Namespace, config: Config) -> int:
    import uvicorn

    from tap_service.main import create_app

    updates: dict[str, object] = {}
    if args.host:
        updates["host"] = args.host
    if args.port:
        updates["port"] = args.port
    config = config.model_copy(update=updates)
    if config.schema_files and config.backend == "embedded":
        from tap_service.services.catalog import SchemaFileError, publish_schema_files

        try:
            names = publish_schema_files(config)
        except SchemaFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"Published {', '.join(names)} from TAP_SCHEMA_FILES")
    if args.json_logs:
        config = config.model_copy(
            update={"logging": config.logging.model_copy(update={"format": "json"})}
        )
    if args.shutdown_timeout:
        config = config.model_copy(update={"shutdown_timeout_seconds": args.shutdown_timeout})
    _configure_logging(config, args.log_level)
    app = create_app(config)
    print(f"Serving TAP at http://{config.host}:{config.port}{config.path_prefix}", flush=True)
    # SIGTERM: uvicorn closes the listening socket at once (new connections are refused), lets
    # responses in flight finish for up to shutdown_timeout_seconds, then runs the lifespan
    # shutdown (job runner and engines closed).
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=args.log_level,
        access_log=args.access_log,
        log_config=None,
        timeout_graceful_shutdown=int(config.shutdown_timeout_seconds),
    )
    return 0


def _configure_logging(config: Config, level: str | None) -> None:
    from tap_service import logs

    logs.configure(config.logging.format, level or config.logging.level)


def _demo(args: argparse.Namespace, config: Config) -> int:
    from tap_service.adql.dialects.embedded import setup_statements
    from tap_service.services.demo_catalog import build_demo_catalog
    from tap_service.storage.embedded import EmbeddedDatabase

    if config.catalog_path.exists():
        if args.if_missing:
            print(f"{config.catalog_path} exists; keeping it")
            return 0
        config.catalog_path.unlink()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    db = EmbeddedDatabase(config.data_dir, setup_statements=setup_statements())
    try:
        build_demo_catalog(
            db,
            n_objects=args.objects,
            n_forced_per_object=args.forced_per_object,
            seed=args.seed,
        )
    finally:
        db.close()
    print(f"Demo catalog built in {time.perf_counter() - start:.1f} s at {config.catalog_path}")
    return 0


def _generate(args: argparse.Namespace, config: Config) -> int:
    from tap_service.adql.dialects.embedded import setup_statements
    from tap_service.felis.model import FelisError, load_felis
    from tap_service.services.generated_catalog import build_generated_catalog
    from tap_service.storage.embedded import EmbeddedDatabase

    try:
        schemas = [load_felis(path) for path in args.felis]
    except (FelisError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.fresh and config.catalog_path.exists():
        config.catalog_path.unlink()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = EmbeddedDatabase(config.data_dir, setup_statements=setup_statements())
    try:
        counts = build_generated_catalog(db, schemas, rows=args.rows, seed=args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(
        f"Generated {counts.rows} rows in {counts.tables} tables ({counts.columns} columns) "
        f"of {', '.join(s.name for s in schemas)} in {counts.seconds:.1f} s at "
        f"{config.catalog_path}"
    )
    return 0


def _ingest(args: argparse.Namespace, config: Config) -> int:
    from tap_service.adql.dialects.embedded import setup_statements
    from tap_service.storage.embedded import EmbeddedDatabase
    from tap_service.storage.ingest import IngestError, ingest

    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = EmbeddedDatabase(config.data_dir, setup_statements=setup_statements())
    try:
        ingest(db, args.schema, table=args.table, file_path=args.file)
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"Loaded {args.file} into {args.table}")
    return 0


def _adql(args: argparse.Namespace, config: Config) -> int:
    from tap_service import adql
    from tap_service.adql.catalog import SimpleCatalog, TableInfo

    catalog: SimpleCatalog | None = None
    if args.schema:
        from tap_service.felis import load_felis

        tables: list[TableInfo] = []
        for path in args.schema:
            tables.extend(load_felis(path).table_infos())
        catalog = SimpleCatalog(tables)
    text = args.query if args.query != "-" else sys.stdin.read()
    try:
        checked = adql.check(adql.parse(text), catalog, text=text)
        if getattr(args, "explain", False):
            import json

            from tap_service.services.explain import estimate

            print(json.dumps(estimate(checked, config.qserv.partitioning).to_dict(), indent=2))
            return 0
        print(adql.to_sql(checked, args.dialect))
    except adql.AdqlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _load_tap_schema(args: argparse.Namespace, config: Config) -> int:
    from tap_service.felis.model import FelisError, load_felis
    from tap_service.storage.mysql_tap_schema import MySQLTapSchema

    try:
        schemas = [load_felis(path) for path in args.felis]
    except (FelisError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    store = MySQLTapSchema(config.qserv.tap_schema_url)
    store.create()
    for schema in schemas:
        store.publish(schema)
        print(f"Published {schema.name} ({len(schema.tables)} tables) in {store.database}")
    return 0


def _check_obscore(args: argparse.Namespace, config: Config) -> int:
    from tap_service.adql.catalog import TableInfo
    from tap_service.exceptions import TapError
    from tap_service.services.obscore import OBSCORE_TABLE, decide, find_obscore

    tables: list[TableInfo] = []
    if args.felis:
        from tap_service.felis.model import FelisError, load_felis

        try:
            for path in args.felis:
                tables.extend(load_felis(path).table_infos())
        except (FelisError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        where = ", ".join(str(path) for path in args.felis)
    else:
        from tap_service.factory import Factory

        factory = Factory(config)
        try:
            tables.extend(factory.tap_schema.model.tables())
        except TapError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        finally:
            factory.close()
        where = "TAP_SCHEMA"
    if find_obscore(tables) is None:
        print(f"no {OBSCORE_TABLE} table in {where}: ObsCore is not declared")
        return 1
    declaration = decide(tables, "auto")
    if not declaration.defects:
        print(f"{declaration.table} in {where} conforms to ObsCore 1.1 (declared with auto)")
        return 0
    print(
        f"{declaration.table} in {where} does not conform to ObsCore 1.1 "
        f"({len(declaration.defects)} defects; not declared with auto):"
    )
    for defect in declaration.defects:
        print(f"  {defect}")
    return 1


def _standin(args: argparse.Namespace, config: Config) -> int:
    from tap_service.services.standin import build_standin

    counts = build_standin(
        config.qserv.url,
        config.qserv.tap_schema_url,
        n_objects=args.objects,
        n_forced_per_object=args.forced_per_object,
        seed=args.seed,
    )
    print(
        f"Stand-in ready: {counts.objects} objects, {counts.forced_sources} forced sources, "
        f"{counts.ccd_visits} CCD visits in {counts.seconds:.1f} s"
    )
    return 0


def _worker(args: argparse.Namespace, config: Config) -> int:
    from tap_service.worker.tasks import app

    argv = [
        "worker",
        "--pool=threads",
        f"--concurrency={args.concurrency}",
        f"--queues={config.redis.queue}",
        f"--loglevel={args.log_level.upper()}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if args.hostname:
        argv.append(f"--hostname={args.hostname}")
    if args.json_logs:
        config = config.model_copy(
            update={"logging": config.logging.model_copy(update={"format": "json"})}
        )
    _configure_logging(config, args.log_level)
    if config.metrics.worker_port is not None:
        from prometheus_client import start_http_server

        start_http_server(config.metrics.worker_port)
    # SIGTERM is Celery's warm shutdown: no new messages are taken, running jobs finish and are
    # acknowledged; messages reserved but not started go back to Redis.  SIGKILL leaves the
    # running jobs to the sweep (stale heartbeat, ERROR) and redelivers their messages after
    # TAP_REDIS__VISIBILITY_TIMEOUT_SECONDS (skipped, since the jobs are no longer QUEUED).
    app.worker_main(argv)
    return 0


def _token(args: argparse.Namespace, config: Config) -> int:
    from datetime import timedelta

    from tap_service.factory import Factory

    factory = Factory(config)
    store = factory.token_store
    try:
        if args.action == "create":
            lifetime = timedelta(days=args.days) if args.days else None
            try:
                token, info = store.create(
                    args.user, args.scope or ["read:tap"], lifetime=lifetime, note=args.note
                )
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            expires = info.expires.isoformat() if info.expires else "never"
            print(
                f"Token {info.key} for {info.username}, scopes {' '.join(info.scopes)}, "
                f"expires {expires}; it is shown only now:"
            )
            print(token)
        elif args.action == "list":
            for info in store.list_tokens(args.user):
                expires = info.expires.isoformat() if info.expires else "never"
                state = " (expired)" if info.expired() else ""
                print(
                    f"{info.key}  {info.username}  {','.join(info.scopes)}  "
                    f"created {info.created.isoformat()}  expires {expires}{state}"
                    + (f"  {info.note}" if info.note else "")
                )
        else:
            if not store.revoke(args.key):
                print(f"error: no token {args.key}", file=sys.stderr)
                return 1
            print(f"Revoked {args.key}")
    finally:
        store.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tap-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve TAP over HTTP")
    serve.add_argument("--host", help="address to bind (TAP_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (TAP_PORT)")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--json-logs", action="store_true", help="one JSON object per line (TAP_LOGGING__FORMAT)"
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=float,
        help="seconds responses in flight may take after SIGTERM (TAP_SHUTDOWN_TIMEOUT_SECONDS)",
    )
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="build the DP0.2-like demo catalog in TAP_DATA_DIR")
    demo.add_argument("--objects", type=int, default=100_000)
    demo.add_argument("--forced-per-object", type=int, default=20)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--if-missing", action="store_true", help="keep an existing catalog")
    demo.set_defaults(run=_demo)

    generate = commands.add_parser(
        "generate",
        help="fill every table of Felis schemas with deterministic generated rows and publish "
        "them (serve a real schema at its real width without its data)",
    )
    generate.add_argument(
        "--felis", required=True, action="append", type=Path, help="Felis YAML (repeatable)"
    )
    generate.add_argument("--rows", type=int, default=200, help="rows per table")
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--fresh", action="store_true", help="start from an empty catalog file")
    generate.set_defaults(run=_generate)

    ingest = commands.add_parser("ingest", help="load a CSV or Parquet file as a TAP table")
    ingest.add_argument("--schema", required=True, type=Path, help="Felis YAML of the table")
    ingest.add_argument("--table", required=True, help="SCHEMA.TABLE as named in the Felis file")
    ingest.add_argument("file", type=Path)
    ingest.set_defaults(run=_ingest)

    worker = commands.add_parser(
        "worker", help="run async jobs from Redis (Celery worker; TAP_UWS__RUNNER=celery)"
    )
    worker.add_argument("--concurrency", type=int, default=4, help="jobs run at once")
    worker.add_argument("--log-level", default="info")
    worker.add_argument("--hostname", help="Celery node name (default: celery@HOST)")
    worker.add_argument(
        "--json-logs", action="store_true", help="one JSON object per line (TAP_LOGGING__FORMAT)"
    )
    worker.set_defaults(run=_worker)

    load = commands.add_parser(
        "load-tap-schema",
        help="publish Felis schemas in the TAP_SCHEMA database of TAP_QSERV__TAP_SCHEMA_URL "
        "(idempotent; each schema replaced atomically)",
    )
    load.add_argument("felis", nargs="+", type=Path, help="Felis YAML files")
    load.set_defaults(run=_load_tap_schema)

    check = commands.add_parser(
        "check-obscore",
        help="check ivoa.ObsCore against ObsCore 1.1 (mandatory columns, utypes, UCDs, units, "
        "datatypes), as TAP_OBSCORE_DECLARE=auto does; exit 1 listing the defects",
    )
    check.add_argument(
        "--felis",
        action="append",
        type=Path,
        help="check this Felis YAML (repeatable) instead of the configured TAP_SCHEMA",
    )
    check.set_defaults(run=_check_obscore)

    standin = commands.add_parser(
        "standin",
        help="build the MariaDB Qserv stand-in at TAP_QSERV__URL (scisql functions, demo "
        "catalog) and its TAP_SCHEMA database",
    )
    standin.add_argument("--objects", type=int, default=100_000)
    standin.add_argument("--forced-per-object", type=int, default=20)
    standin.add_argument("--seed", type=int, default=42)
    standin.set_defaults(run=_standin)

    token = commands.add_parser(
        "token", help="manage the tokens TAP_AUTH__MODE=tokens accepts (stored hashed)"
    )
    token_commands = token.add_subparsers(dest="action", required=True)
    create = token_commands.add_parser("create", help="print a new token on the last line")
    create.add_argument("--user", required=True, help="user name owning the token and its jobs")
    create.add_argument("--scope", action="append", help="scope (repeatable; default read:tap)")
    create.add_argument("--days", type=float, help="lifetime in days (default: no expiry)")
    create.add_argument("--note", help="free text shown by token list")
    listing = token_commands.add_parser("list", help="list tokens (keys, never secrets)")
    listing.add_argument("--user", help="only this user's tokens")
    revoke = token_commands.add_parser("revoke", help="delete a token by its key")
    revoke.add_argument("key", help="the key shown by token list (or the whole token)")
    token.set_defaults(run=_token)

    translate = commands.add_parser("adql", help="check ADQL and print the backend SQL")
    translate.add_argument("--dialect", choices=("embedded", "qserv"), default="embedded")
    translate.add_argument("--schema", action="append", type=Path, help="Felis YAML (repeatable)")
    translate.add_argument(
        "--explain",
        action="store_true",
        help="print the Qserv cost estimate (JSON) from TAP_QSERV__PARTITIONING instead of SQL",
    )
    translate.add_argument("query", help="the ADQL text, or - to read it from standard input")
    translate.set_defaults(run=_adql)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.run(args, Config())
    return result


if __name__ == "__main__":
    sys.exit(main())
