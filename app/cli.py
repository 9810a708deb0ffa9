"""Command-line entry points: `flask --app wsgi <command>`. Each commits once at the end."""

from __future__ import annotations

import getpass
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def register(app: Flask) -> None:
    """Attach the commands to the app."""

    @app.cli.command("seed-demo")
    def seed_demo_command() -> None:
        """Load the demo organisation of api.md (refused in production)."""
        from app.seed import seed_demo

        if current_app.config["YDX_PRODUCTION"]:
            raise click.ClickException("seed-demo is refused in production (YDX_ENV=production)")
        created = seed_demo()
        db.session.commit()
        click.echo("demo organisation created" if created else "demo organisation already present")

    @app.cli.command("bootstrap")
    @click.pass_context
    def bootstrap(ctx: click.Context) -> None:
        """Embedded start in one process: migrate, load the demo org on a new db, deploy."""
        from flask_migrate import upgrade

        upgrade(directory=str(ROOT / "migrations"))
        ctx.invoke(seed_demo_command)
        ctx.invoke(deploy_command, paths=())

    @app.cli.command("create-admin")
    @click.argument("username")
    @click.option("--password", default=None, help="read from a prompt when omitted")
    def create_admin(username: str, password: str | None) -> None:
        """Create an administrator account (works in production)."""
        from app.auth.services import hash_password, password_problem
        from app.models import Role, User
        from app.seed import ensure_roles_and_grants

        ensure_roles_and_grants()
        if db.session.scalar(select(User).where(User.username == username)) is not None:
            raise click.ClickException(f"user {username} already exists")
        password = password or getpass.getpass("password: ")
        problem = password_problem(password, username)
        if problem:
            raise click.ClickException(f"password refused: {problem}")
        db.session.add(
            User(
                username=username,
                display_name=username,
                password_hash=hash_password(password),
                roles=[db.session.get(Role, "admin")],
            )
        )
        db.session.commit()
        click.echo(f"admin {username} created")

    process = AppGroup("process", help="Process definitions (BPMN/DMN).")
    app.cli.add_command(process)

    @process.command("deploy")
    @click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
    def deploy_command(paths: tuple[Path, ...]) -> None:
        """Deploy bpmn/ and rules/ (or the given files); unchanged files make no version."""
        from app.errors import ApiError
        from app.seed import ensure_roles_and_grants
        from app.workflow.deploy import deploy

        ensure_roles_and_grants()
        files = list(paths) or sorted((ROOT / "bpmn").glob("*.bpmn")) + sorted((ROOT / "rules").glob("*.dmn"))
        try:
            created = deploy([(p.name, p.read_bytes()) for p in files], None)
        except ApiError as exc:
            db.session.rollback()
            for name, problems in exc.fields.items():
                for problem in problems:
                    click.echo(f"{name}: {problem}", err=True)
            raise click.ClickException(exc.message) from exc
        db.session.commit()
        for row in created:
            click.echo(f"deployed {row.kind} {row.key} version {row.version}")
        if not created:
            click.echo("nothing changed")

    outbox = AppGroup("outbox", help="Pending effects of service tasks.")
    app.cli.add_command(outbox)

    @outbox.command("retry")
    @click.argument("outbox_id", type=int)
    def retry_command(outbox_id: int) -> None:
        """Put a failed outbox row (an incident) back in the queue."""
        from app.workflow import outbox as box

        if not box.retry_failed(outbox_id):
            raise click.ClickException(f"outbox row {outbox_id} is not a failed row")
        db.session.commit()
        click.echo(f"outbox row {outbox_id} queued again")

    @outbox.command("failed")
    def failed_command() -> None:
        """List the incidents: outbox rows that used up their attempts."""
        from app.workflow import outbox as box

        rows = box.failed_rows()
        for row in rows:
            click.echo(
                f"{row.id}\tinstance {row.instance_id}\t{row.operation}\t{row.attempts} attempts\t{row.last_error}"
            )
        click.echo(f"{len(rows)} failed row(s); `flask --app wsgi outbox retry <id>` queues one again")

    @outbox.command("relay")
    def relay_command() -> None:
        """Run the periodic jobs once: relay due outbox rows, escalate overdue tasks."""
        from app.scheduler import run_periodic_jobs

        click.echo(run_periodic_jobs())
