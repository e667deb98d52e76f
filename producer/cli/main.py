"""The ``shiti`` command line. Never imports ``worker``: its commands (``worker``, ``model``) load lazily.

User errors print one line (``error: ...``) and exit 1; unknown ids exit 2.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from producer import fields
from producer.cli.console import print_status, wait_for
from storage.core.cli_options import with_settings
from storage.core.errors import NotFound, ShitiError
from storage.core.settings import Settings
from storage.core.views import EntityView


class ShitiGroup(click.Group):
    """One-line errors instead of tracebacks; some commands loaded lazily by ``module:name``."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            module, _, name = self.lazy_commands[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), name)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NotFound as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except ShitiError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


# Commands declared beside the worker, loaded only when invoked or listed: the producer never
# imports the worker's modules (import contract in pyproject.toml), and `shiti model` alone
# may need torch.
LAZY_COMMANDS = {
    "worker": "worker.cli:worker",
    "model": "worker.model.cli:model",
    "dict": "producer.cli.dicts:dict_group",
    "sample": "producer.cli.review:sample",
    "data": "producer.cli.review:data_group",
    "cooccur": "producer.cli.overview:cooccur",
}


def job_options_flags(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--priority, --notify, --fold/--no-fold and --dict of a new job (its model is the global --model)."""
    fn = click.option("--incremental/--force", default=False, show_default=True,
                      help="--incremental: reuse the entities of identical earlier documents (same text, model, "
                           "dictionary, fold and window settings) instead of tagging them again; --force: tag "
                           "everything.")(fn)
    fn = click.option("--dict", "dictionary", metavar="NAME[@VERSION]",
                      help="Apply this stored dictionary (`shiti dict list`; default: its newest version) "
                           "after the model: forced terms become entities, blocked ones are dropped.")(fn)
    fn = click.option("--fold/--no-fold", default=True, show_default=True,
                      help="Fold Traditional characters to Simplified before the model (offsets and "
                           "entity texts stay the document's own).")(fn)
    fn = click.option("--notify", metavar="URL",
                      help="POST a signed JSON summary here when the job ends [SHITI_NOTIFY_URL]; "
                           "see docs/webhooks.md.")(fn)
    return click.option("--priority", type=click.IntRange(1, 100), default=1, show_default=True,
                        help="Weight in the fair share of the model's workers (2 = twice the batches "
                             "of a priority-1 job while both run).")(fn)


@click.group(cls=ShitiGroup, lazy_commands=LAZY_COMMANDS)
def cli() -> None:
    """shiti: bulk Chinese named-entity extraction (the entity types are the model's: `shiti model list`)."""


def _with_broker(settings: Settings, *, start: bool = True) -> Settings:
    from storage.broker.redis_server import broker_url

    return settings.replace(redis_url=broker_url(settings, start=start))


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "text", "folder", "csv"]), help="Default: from the path.")
@click.option("--id-field", default="id", show_default=True)
@click.option("--text-field", default="text", show_default=True)
@click.option("--client-token", help="Idempotency key: the same token returns the same job.")
@click.option("--name", help="Job name (default: the file name).")
@click.option("--wait", is_flag=True, help="Show progress until the job is finished.")
@click.option("--json", "as_json", is_flag=True, help='Print only {"job_id": ...}.')
@job_options_flags
@with_settings
def submit(path: Path, fmt: str | None, id_field: str, text_field: str, client_token: str | None,
           name: str | None, wait: bool, as_json: bool, priority: int, notify: str | None, fold: bool,
           dictionary: str | None, incremental: bool, settings: Settings) -> None:
    """Store a corpus as a job and enqueue it (tagged by --model, default SHITI_MODEL)."""
    from producer.service import job_options, submit_corpus

    if not path.exists():
        raise ShitiError(f"no such file or directory: {path}")
    # With no SHITI_REDIS_URL the embedded redis-server is started (detached) and left running
    # for workers; `shiti redis --stop` stops it.
    settings = _with_broker(settings)
    options = job_options(settings, priority=priority, notify_url=notify, fold=fold, dictionary=dictionary,
                          incremental=incremental)
    result = submit_corpus(settings, path, fmt=fmt, client_token=client_token, id_field=id_field,
                           text_field=text_field, name=name, options=options)
    _report_submit(settings, result, wait=wait, as_json=as_json)


def _report_submit(settings: Settings, result: Any, *, wait: bool, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"job_id": result.job_id}))
    else:
        verb = "submitted" if result.created else "already submitted as"
        reused = f", {result.reused} reused" if result.reused else ""
        click.echo(f"{verb} job {result.job_id}: {result.documents} documents, {result.rejected} rejected{reused}")
    if wait:
        final = wait_for(settings, result.job_id, quiet=as_json)
        if not as_json:
            click.echo(f"job {result.job_id} {final['state']}: {final['done']} done, {final['failed']} failed")


@cli.command()
@click.argument("job_id")
@click.option("--name", help="Job name (default: rerun of the first job's name).")
@click.option("--wait", is_flag=True, help="Show progress until the job is finished.")
@click.option("--json", "as_json", is_flag=True, help='Print only {"job_id": ...}.')
@job_options_flags
@with_settings
def rerun(job_id: str, name: str | None, wait: bool, as_json: bool, priority: int, notify: str | None,
          fold: bool, dictionary: str | None, incremental: bool, settings: Settings) -> None:
    """A new job over JOB_ID's stored documents, tagged by --model (nothing re-uploaded)."""
    from producer.service import job_options, rerun_job

    settings = _with_broker(settings)
    options = job_options(settings, priority=priority, notify_url=notify, fold=fold, dictionary=dictionary,
                          incremental=incremental)
    _report_submit(settings, rerun_job(settings, job_id, options=options, name=name), wait=wait, as_json=as_json)


@cli.command()
@click.argument("job_a")
@click.argument("job_b")
@click.option("--limit", default=20, show_default=True, help="Entities listed per kind (all are counted).")
@click.option("--json", "as_json", is_flag=True)
@with_settings
def diff(job_a: str, job_b: str, limit: int, as_json: bool, settings: Settings) -> None:
    """Entities only in JOB_A, only in JOB_B, and whose type changed (same documents, by doc id)."""
    from producer.service import diff_jobs

    d = diff_jobs(settings, job_a, job_b, limit=limit)
    if as_json:
        click.echo(json.dumps(d, ensure_ascii=False))
        return
    click.echo(f"A {d['job_a']} ({d['model_a']})  B {d['job_b']} ({d['model_b']})  {d['documents']} documents")
    if not d["complete"]:
        click.echo("(a job is still running: its untagged documents count as having no entities)")
    click.echo(f"{'type':<6}{'only A':>8}{'only B':>8}{'changed':>9}")
    for label, c in [*d["by_label"].items(), ("all", d["counts"])]:
        click.echo(f"{label:<6}{c['only_a']:>8}{c['only_b']:>8}{c['changed']:>9}")
    for key, title in (("only_a", "only in A"), ("only_b", "only in B"), ("changed", "changed type")):
        for e in d[key]:  # type: ignore[literal-required]
            change = f" -> {e['label_b']}" if "label_b" in e else ""
            click.echo(f"{title:<13} {e['doc_id']} [{e['start']}:{e['end']}] {e['text']} {e['label']}{change}")
    if d["truncated"]:
        click.echo(f"(lists cut at {limit} each; --limit N or --json for more)")


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@with_settings
def status(job_id: str, as_json: bool, settings: Settings) -> None:
    """Progress of a job."""
    from producer.service import job_status

    s = job_status(settings, job_id)
    click.echo(json.dumps(s, ensure_ascii=False)) if as_json else print_status(s)


@cli.command()
@click.option("--state", help="Only jobs in this state.")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@with_settings
def jobs(state: str | None, limit: int, as_json: bool, settings: Settings) -> None:
    """Recent jobs, newest first."""
    from producer.service import list_jobs

    items = list_jobs(settings, state=state, limit=limit)["items"]
    if as_json:
        click.echo(json.dumps(items, ensure_ascii=False))
        return
    for j in items:
        click.echo(f"{j['job_id']}  {j['state']:<16} {j['done']:>7}/{j['total']:<7} failed {j['failed']:<5}"
                   f" {j['submitted_at']}  {j['name'] or ''}")


@cli.command()
@click.argument("job_id", required=False)
@click.option("--job", "job_opt", help="Job id (same as the argument).")
@click.option("--type", "label", metavar="LABEL",
              help="Entity label, case-insensitive: the model's own (`shiti model list`), e.g. PER.")
@click.option("--text", help="Exact entity text.")
@click.option("--doc", help="Document id.")
@click.option("--min-score", type=click.FloatRange(0, 1), help="Only entities scored at least this (0..1).")
@click.option("--limit", default=50, show_default=True)
@click.option("--top", type=int, help="Most frequent entity strings per type instead.")
@click.option("--group", is_flag=True, help="Canonical entities instead (spellings folded, dictionary aliases "
                                            "merged), most documents first, with mention counts and forms.")
@click.option("--mentioning", metavar="NAME", help="The documents mentioning NAME or any spelling or alias of it "
                                                   "instead, each once with its mentions.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table")
@click.option("--json", "as_json", is_flag=True, help="Same as --format jsonl.")
@with_settings
def entities(job_id: str | None, job_opt: str | None, label: str | None, text: str | None, doc: str | None,
             min_score: float | None, limit: int, top: int | None, group: bool, mentioning: str | None, fmt: str,
             as_json: bool, settings: Settings) -> None:
    """Entities of a job, from SQL."""
    from producer.cli.overview import emit, print_groups, print_mentioning
    from producer.service import find_entities, top_entities

    job_id = job_id or job_opt
    if not job_id:
        raise click.UsageError("give a job id")
    fmt = "jsonl" if as_json else fmt
    # The same checks as the API's filters: NUL, a lone surrogate or an overlong value is a clear error.
    label = fields.filter_value("type", label.upper() if label else None)
    text, doc = fields.filter_value("text", text), fields.filter_value("doc", doc)
    if group or mentioning is not None:
        if group and mentioning is not None:
            raise click.UsageError("--group or --mentioning, not both")
        if mentioning is not None:
            name = fields.filter_value("mentioning", mentioning)
            assert name is not None
            return print_mentioning(settings, job_id, name, label=label, limit=limit, fmt=fmt)
        return print_groups(settings, job_id, label=label, limit=limit, fmt=fmt)
    # Printed as plain mappings: the columns differ between the two listings.
    rows: list[Mapping[str, Any]]
    if top:
        rows = list(top_entities(settings, job_id, label=label, limit=top))
        cols = ["label", "text", "count"]
    else:
        found: list[EntityView] = []
        cursor = None
        while len(found) < limit:
            page = find_entities(settings, job_id, label=label, text=text, doc=doc, cursor=cursor,
                                 min_score=min_score, limit=min(1000, limit - len(found)))
            found.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        rows = list(found)
        cols = ["doc_id", "start", "end", "label", "text", "score", "source"]
    flat = rows if fmt == "csv" else [{**r, "score": f"{r['score']:.3f}"} if "score" in r else r for r in rows]
    emit(rows, flat, cols, fmt)


@cli.command()
@click.argument("job_id")
@click.option("--out", type=click.Path(path_type=Path), help="Output file (default stdout).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "label-studio", "doccano", "conll", "bio"]),
              default="jsonl", show_default=True,
              help="jsonl: one record per document; label-studio: tasks with predictions (a labeling config is "
                   "written beside --out); doccano: JSONL; conll/bio: one character per line, what "
                   "`shiti model train` reads (docs/corrections.md).")
@click.option("--offsets", type=click.Choice(["codepoint", "utf16"]),
              help="How the tool counts characters (default: the tool's own: Label Studio code points, "
                   "doccano UTF-16 units).")
@click.option("--min-score", type=click.FloatRange(0, 1), help="Only entities scored at least this (0..1).")
@with_settings
def export(job_id: str, out: Path | None, fmt: str, offsets: str | None, min_score: float | None,
           settings: Settings) -> None:
    """Write a job's documents and entities (streaming): shiti's JSON Lines or an annotation tool's format."""
    from producer.cli.review import write_export
    from producer.review import export as export_pieces

    write_export(settings, job_id, export_pieces(settings, job_id, fmt, min_score=min_score, offsets=offsets),
                 fmt=fmt, out=out)


@cli.command()
@click.argument("job_id")
@with_settings
def cancel(job_id: str, settings: Settings) -> None:
    """Cancel a job (running documents finish, the rest are cancelled)."""
    from producer.service import cancel_job

    click.echo(f"job {job_id} {cancel_job(settings, job_id)['state']}")


@cli.command()
@click.argument("job_id")
@click.option("--reason", help="Only documents failed with this reason (e.g. timeout, error, poison).")
@with_settings
def retry(job_id: str, reason: str | None, settings: Settings) -> None:
    """Re-queue a job's failed documents (bad input is not retried)."""
    from producer.service import retry_failed

    settings = _with_broker(settings, start=False) if not settings.redis_url else settings
    click.echo(f"re-queued {retry_failed(settings, job_id, reason=reason)['requeued']} documents of job {job_id}")


@cli.command()
@click.argument("job_id", required=False)
@click.option("--older-than", metavar="AGE", help="Every job finished more than AGE ago (30d, 12h, 90m).")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option("--json", "as_json", is_flag=True)
@with_settings
def purge(job_id: str | None, older_than: str | None, dry_run: bool, as_json: bool, settings: Settings) -> None:
    """Delete a finished job (or every job finished more than --older-than ago) with its documents
    and entities, in short batches that do not hold up the workers."""
    from producer.service import purge as purge_jobs

    done = purge_jobs(settings, job_id=job_id, older_than=older_than, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(done))
        return
    verb = "would delete" if dry_run else "deleted"
    for d in done:
        click.echo(f"{verb} job {d['job_id']}: {d['documents']} documents"
                   + (f", {d['entities']} entities" if d["entities"] is not None else ""))
    if not done:
        click.echo("no job to purge")


def _pause_command(paused: bool) -> click.Command:
    verb = "pause" if paused else "resume"

    @click.argument("job_id", required=False)
    @click.option("--model", "model_name", metavar="NAME", help=f"{verb.capitalize()} every open job of this model.")
    @with_settings
    def command(job_id: str | None, model_name: str | None, settings: Settings) -> None:
        from producer.service import pause

        if not paused:
            settings = _with_broker(settings, start=False) if not settings.redis_url else settings
        changed = pause(settings, job_id=job_id, model=model_name, paused=paused)
        click.echo(f"{verb}d {len(changed)} job(s): {' '.join(changed) or '-'}")

    command.__doc__ = ("Pause a job (or --model NAME's open jobs): no new batch is handed out, running "
                       "documents finish, nothing is lost." if paused else
                       "Resume a paused job (or --model NAME's): its batches are handed out again.")
    return cli.command(verb)(command)


_pause_command(True)
_pause_command(False)


@cli.command()
@with_settings
def reconcile(settings: Settings) -> None:
    """Re-send stuck documents and repair job counters."""
    from storage.broker.dispatch import reconcile as run

    click.echo(json.dumps(run(_with_broker(settings, start=False))))


@cli.command()
@click.option("--port", type=int, help="Default: a free port.")
@click.option("--detach", is_flag=True, help="Start it in the background and return.")
@click.option("--stop", is_flag=True, help="Stop the embedded server of this data dir.")
@with_settings
def redis(port: int | None, detach: bool, stop: bool, settings: Settings) -> None:
    """Run the embedded redis-server (AOF on, noeviction) for this data dir."""
    from storage.broker.redis_server import embedded_dir, running_embedded, start_redis, stop_redis

    running = running_embedded(settings)
    if stop:
        if running is None:
            raise ShitiError("no embedded redis is running for this data dir")
        stop_redis(running)
        click.echo(f"stopped redis pid {running.pid}")
        return
    if running is not None:
        click.echo(running.url)
        return
    server = start_redis(embedded_dir(settings), port=port)
    click.echo(server.url)
    if detach:
        return
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop_redis(server)


@cli.group()
def keys() -> None:
    """API keys (the REST API needs one once any exists; the CLI itself is unrestricted)."""


@keys.command("create")
@click.option("--name", required=True, help="Unique name; jobs submitted with the key are owned by it.")
@click.option("--scope", required=True, help="read (see own jobs), submit (also submit/cancel/retry), admin (all jobs).")
@with_settings
def keys_create(name: str, scope: str, settings: Settings) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from storage.sql import keys as api_keys
    from storage.sql.db import get_database

    key = api_keys.create_key(get_database(settings), name=name, scope=scope)
    click.echo(key)
    click.echo(f"key {name!r} ({scope}) created; it is shown only now: store it safely", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_settings
def keys_list(as_json: bool, settings: Settings) -> None:
    """Name, scope, created and last used of every key (never the key)."""
    from storage.core.views import iso_time
    from storage.sql import keys as api_keys
    from storage.sql.db import get_database

    found = api_keys.list_keys(get_database(settings))
    rows = [{"name": k.name, "scope": k.scope, "created_at": iso_time(k.created_at),
             "last_used_at": iso_time(k.last_used_at)}
            for k in found]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        click.echo(f"{r['name']:<24} {r['scope']:<7} created {r['created_at']}  last used {r['last_used_at'] or 'never'}")


@keys.command("revoke")
@click.argument("name")
@with_settings
def keys_revoke(name: str, settings: Settings) -> None:
    """Delete a key: refused from the next request on."""
    from storage.sql import keys as api_keys
    from storage.sql.db import get_database

    api_keys.revoke_key(get_database(settings), name)
    click.echo(f"key {name!r} revoked")


@cli.group()
def db() -> None:
    """Database schema: `shiti db upgrade` after installing a new release, `shiti db current`."""


@db.command("upgrade")
@with_settings
def db_upgrade(settings: Settings) -> None:
    """Upgrade the database's schema to this release's revision, in place (rows are kept)."""
    from storage.sql.db import upgrade_schema

    before, after = upgrade_schema(settings)
    click.echo(f"database schema: {before or 'none'} -> {after}")


@db.command("current")
@with_settings
def db_current(settings: Settings) -> None:
    """Print the database's schema revision and whether it matches this release."""
    from storage.sql import migrate
    from storage.sql.db import make_engine

    # Not get_database: it refuses a database behind the code, which this command reports.
    engine = make_engine(settings.sqlalchemy_url, busy_timeout_ms=settings.busy_timeout_ms)
    try:
        with engine.connect() as conn:
            revision, where = migrate.current(conn), migrate.state(conn)
    finally:
        engine.dispose()
    click.echo(f"revision {revision or 'none'} ({migrate.DESCRIPTION[where]}; this release needs {migrate.head()})")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--insecure", is_flag=True, help="Serve a non-loopback address with no API key (anyone may call it).")
@with_settings
def serve(host: str, port: int, insecure: bool, settings: Settings) -> None:
    """Serve the REST API and the web page (a key is needed once any exists: `shiti keys`)."""
    api = importlib.import_module("producer.api.app")
    api.serve(settings, host=host, port=port, insecure=insecure)


@cli.command()
@click.option("--docs", type=int, help="Use only the first N sample documents.")
@with_settings
def demo(docs: int | None, settings: Settings) -> None:
    """Start redis and one worker, tag the bundled news sample, show the results, stop everything."""
    from producer.cli.demo import run_demo

    run_demo(settings, limit=docs)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="shiti")


if __name__ == "__main__":
    main()
