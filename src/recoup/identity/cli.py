"""``recoup users …``, ``recoup apikeys …`` and ``recoup keys rotate``."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from recoup.audit import service as audit
from recoup.config import get_settings
from recoup.db import unit_of_work
from recoup.identity import repository, rotation, service
from recoup.identity.permissions import API_KEY_SCOPES, ROLES
from recoup.identity.secret import InsecureConfiguration, check_startup
from recoup.institutions import repository as institutions
from recoup.kit import crypto
from recoup.kit.cli import console, error_console, fail_on_domain_error, progress
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.models.identity import ApiKey

users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
apikeys_app = typer.Typer(help="Manage API keys of integrating systems.", no_args_is_help=True)
keys_app = typer.Typer(help="PII encryption keys.", no_args_is_help=True)

CLI_ACTOR = "cli"


def _refuse_insecure() -> None:
    """Stop before doing anything when the secrets are unsafe for this environment."""
    try:
        check_startup()
    except (InsecureConfiguration, crypto.KeyRingError) as error:
        error_console.print(f"[red]error:[/] {error}")
        raise typer.Exit(code=1) from None


users_app.callback()(_refuse_insecure)
apikeys_app.callback()(_refuse_insecure)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("create")
def create_user(
    username: str = typer.Argument(..., help="Sign-in name"),
    role: str | None = typer.Option(None, "--role", help=f"One of: {', '.join(ROLES)}"),
    institution: str | None = typer.Option(None, "--institution", help="Institution code"),
    platform_admin: bool = typer.Option(
        False, "--platform-admin", help="An admin of every institution (no --institution)"
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input"
    ),
    display_name: str = typer.Option("", "--display-name", help="Name shown in the app"),
) -> None:
    """Add a user to an institution (or a platform admin)."""
    with fail_on_domain_error():
        if platform_admin == (institution is not None):
            raise ValidationFailed("give either --institution CODE or --platform-admin")
        if platform_admin and role not in (None, "admin"):
            raise ValidationFailed("a platform admin always has the admin role")
        if not platform_admin and role is None:
            raise ValidationFailed(f"give the user a --role: {', '.join(ROLES)}")
        password = _read_password(password_stdin)
        with unit_of_work() as session:
            institution_id = (
                institutions.require_by_code(session, institution).id if institution else None
            )
            user = service.create_user(
                session,
                username=username,
                role=role or "admin",
                institution_id=institution_id,
                password=password,
                display_name=display_name,
                actor=CLI_ACTOR,
            )
            where = f"institution {institution}" if institution else "every institution"
            console.print(f"Created user [bold]{user.username}[/] ({user.role}, {where}).")


@users_app.command("list")
def list_users(
    institution: str | None = typer.Option(None, "--institution", help="Only this institution"),
) -> None:
    """Show users with their role and institution."""
    with fail_on_domain_error(), unit_of_work() as session:
        codes = {item.id: item.code for item in institutions.list_all(session)}
        institution_id = (
            institutions.require_by_code(session, institution).id if institution else None
        )
        users, _total = repository.list_users(session, institution_id=institution_id)
        table = Table("username", "role", "institution", "active", "last sign-in")
        for user in users:
            table.add_row(
                user.username,
                str(user.role),
                codes.get(user.institution_id, "(platform)")
                if user.institution_id
                else "(platform)",
                "yes" if user.active else "no",
                user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "-",
            )
        console.print(table)


@users_app.command("reset-password")
def reset_password(
    username: str = typer.Argument(..., help="Sign-in name"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the new password from standard input"
    ),
) -> None:
    """Set a new password, lift a sign-in lock and end the user's sessions (audited)."""
    with fail_on_domain_error():
        password = _read_password(password_stdin)
        with unit_of_work() as session:
            user = service.managed_user_by_username(session, username=username, actor=CLI_ACTOR)
            service.reset_password(session, user_id=user.id, password=password, actor=CLI_ACTOR)
            console.print(f"Reset the password of [bold]{user.username}[/]; their sessions ended.")


@users_app.command("deactivate")
def deactivate_user(username: str = typer.Argument(..., help="Sign-in name")) -> None:
    """Stop a user from signing in and end their sessions and tokens (audited)."""
    with fail_on_domain_error(), unit_of_work() as session:
        user = service.managed_user_by_username(session, username=username, actor=CLI_ACTOR)
        service.deactivate_user(session, user_id=user.id, actor=CLI_ACTOR)
        console.print(f"Deactivated [bold]{user.username}[/]; their sessions ended.")


@users_app.command("activate")
def activate_user(username: str = typer.Argument(..., help="Sign-in name")) -> None:
    """Let a deactivated user sign in again (audited)."""
    with fail_on_domain_error(), unit_of_work() as session:
        user = service.managed_user_by_username(session, username=username, actor=CLI_ACTOR)
        service.activate_user(session, user_id=user.id, actor=CLI_ACTOR)
        console.print(f"Activated [bold]{user.username}[/].")


@users_app.command("set-role")
def set_role(
    username: str = typer.Argument(..., help="Sign-in name"),
    role: str = typer.Argument(..., help=f"One of: {', '.join(ROLES)}"),
) -> None:
    """Change a user's role; their sessions end so it applies at once (audited)."""
    with fail_on_domain_error(), unit_of_work() as session:
        user = service.managed_user_by_username(session, username=username, actor=CLI_ACTOR)
        previous = str(user.role)
        service.set_role(session, user_id=user.id, role=role, actor=CLI_ACTOR)
        console.print(f"Changed the role of [bold]{user.username}[/] from {previous} to {role}.")


@apikeys_app.command("create")
def create_api_key(
    institution: str = typer.Option(..., "--institution", help="Institution code"),
    scopes: str = typer.Option(
        ..., "--scopes", help=f"Comma-separated, from: {', '.join(sorted(API_KEY_SCOPES))}"
    ),
    name: str = typer.Option(..., "--name", help="Which system uses the key"),
) -> None:
    """Create a scoped API key and print it once (only its hash is stored)."""
    with fail_on_domain_error(), unit_of_work() as session:
        owner = institutions.require_by_code(session, institution)
        plaintext, api_key = service.create_api_key(
            session,
            institution_id=owner.id,
            name=name,
            scopes=[scope.strip() for scope in scopes.split(",") if scope.strip()],
            actor=CLI_ACTOR,
        )
        session.flush()
        key_id = api_key.id
    # Printed after the commit, so a key that is shown always exists.
    console.print(f"Created API key {key_id} for {institution}: {', '.join(api_key.scopes)}")
    console.print("Store it now; it is not shown again:")
    typer.echo(plaintext)


@apikeys_app.command("list")
def list_api_keys(
    institution: str | None = typer.Option(None, "--institution", help="Only this institution"),
) -> None:
    """Show API keys (never their secrets)."""
    with fail_on_domain_error(), unit_of_work() as session:
        institution_id = (
            institutions.require_by_code(session, institution).id if institution else None
        )
        table = Table("id", "prefix", "name", "scopes", "revoked")
        for api_key in repository.list_api_keys(session, institution_id=institution_id):
            revoked = api_key.revoked_at.isoformat(timespec="seconds") if api_key.revoked_at else ""
            table.add_row(
                str(api_key.id), api_key.prefix, api_key.name, ",".join(api_key.scopes), revoked
            )
        console.print(table)


@apikeys_app.command("revoke")
def revoke_api_key(key: str = typer.Argument(..., help="The key's id or prefix")) -> None:
    """Revoke an API key; requests using it are refused from now on."""
    with fail_on_domain_error(), unit_of_work() as session:
        found: ApiKey | None = repository.get_api_key_by_prefix(session, key)
        if found is None and key.isdigit():
            found = session.get(ApiKey, int(key))
        if found is None:
            raise NotFound(f"no API key with id or prefix {key!r}")
        service.revoke_api_key(session, api_key_id=found.id, actor=CLI_ACTOR)
        console.print(f"Revoked API key {found.id} ({found.prefix}, {found.name}).")


@keys_app.command("rotate")
def rotate(
    batch: int = typer.Option(1000, "--batch", min=1, help="Rows re-encrypted per transaction"),
) -> None:
    """Make a new key active, re-encrypt all PII with it, then retire the old key.

    Each batch commits on its own; if interrupted, run the command again to continue.
    Restart running app processes afterwards so they load the new key ring.
    """
    settings = get_settings()
    path = settings.keyring_file
    assert path is not None
    with fail_on_domain_error():
        try:
            check_startup(settings)
            ring = crypto.load_keyring(path, create=settings.is_development)
        except (InsecureConfiguration, crypto.KeyRingError) as error:
            raise ValidationFailed(str(error)) from None
        target, started = rotation.start_rotation(ring)
        if started:
            # Saved before any row uses the new key, so no ciphertext is ever without its key.
            crypto.save_keyring(target, path)
            console.print(f"New active key {target.active}; re-encrypting…")
        else:
            console.print(f"Resuming the rotation to key {target.active}…")
        crypto.set_keyring(target)
        with unit_of_work() as session:
            audit.record(
                session,
                actor=CLI_ACTOR,
                action="keys.rotate_start" if started else "keys.rotate_resume",
                object_type="key_ring",
                object_id=target.active,
                details={"keys": sorted(target.keys)},
            )
        total = 0
        with progress() as bar:
            task = bar.add_task("re-encrypting", total=None)
            while True:
                with unit_of_work() as session:
                    done = rotation.reencrypt_batch(session, ring=target, batch=batch)
                if not done:
                    break
                total += done
                bar.advance(task, done)
        with unit_of_work() as session:
            final, retired = rotation.retire_unused(session, ring=target)
            audit.record(
                session,
                actor=CLI_ACTOR,
                action="keys.rotate",
                object_type="key_ring",
                object_id=final.active,
                details={"rows": total, "retired": retired, "active": final.active},
            )
        crypto.save_keyring(final, path)
        crypto.set_keyring(final)
    retired_text = ", ".join(retired) if retired else "none"
    console.print(f"Re-encrypted {total} rows under key {final.active}; retired: {retired_text}.")
