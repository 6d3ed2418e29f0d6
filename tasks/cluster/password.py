"""The cluster's master password: generated to Redshift's rules and kept in a Prefect Secret
block, never printed or logged."""

from __future__ import annotations

import secrets
import string

from prefect.blocks.system import Secret

from tasks.cluster.blocks import is_missing_block

# Redshift master passwords: 8-64 printable ASCII characters with an upper, a lower and a digit;
# ' " \ / @ and space are refused. The punctuation kept here is also safe in connection URLs.
PASSWORD_PUNCTUATION = "!#$%^&*()-_=+"
PASSWORD_FORBIDDEN = frozenset("'\"\\/@ ")


def is_valid_password(password: str) -> bool:
    """True when Redshift accepts the password as a master user password."""
    return (
        8 <= len(password) <= 64
        and any(c.isupper() for c in password)
        and any(c.islower() for c in password)
        and any(c.isdigit() for c in password)
        and all(33 <= ord(c) <= 126 and c not in PASSWORD_FORBIDDEN for c in password)
    )


def generate_password(length: int = 32) -> str:
    """A random master password that satisfies Redshift's rules."""
    if not 8 <= length <= 64:
        raise ValueError(f"Redshift passwords have 8 to 64 characters, not {length}")
    alphabet = string.ascii_letters + string.digits + PASSWORD_PUNCTUATION
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if is_valid_password(password):
            return password


def load_or_create_password(secret_name: str) -> tuple[str, bool]:
    """The password held by a Secret block, generating and saving one if there is none; the
    flag says whether it was generated now."""
    try:
        return str(Secret.load(secret_name).get()), False
    except ValueError as error:
        if not is_missing_block(error):
            raise
        password = generate_password()
        Secret(value=password).save(secret_name)
        return password, True
