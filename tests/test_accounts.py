"""Agent accounts and sessions against a real Redis."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from bot.escalations import connect
from bot.settings import Settings
from handoff.accounts import MAX_FAILURES, AccountError, Accounts, hash_password, verify_password


@pytest.fixture()
async def accounts():
    redis = connect(Settings.from_env().redis_url)
    prefix = "test" + secrets.token_hex(4)
    yield Accounts(redis, prefix, session_ttl_s=1)
    async for key in redis.scan_iter(f"{prefix}:*"):
        await redis.delete(key)
    await redis.close()


def test_passwords_are_salted_scrypt_hashes() -> None:
    first, second = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert first.startswith("scrypt$") and first != second  # a random salt each time
    assert verify_password("correct horse battery", first)
    assert not verify_password("correct horse batterY", first)
    assert "correct" not in first


async def test_accounts_validate_what_they_store(accounts: Accounts) -> None:
    await accounts.create("anna", "correct horse battery", "admin", "Anna K.")
    with pytest.raises(AccountError, match="taken"):
        await accounts.create("Anna", "another long password")
    with pytest.raises(AccountError, match="at least 10"):
        await accounts.create("bob", "short")
    with pytest.raises(AccountError, match="role"):
        await accounts.create("carl", "correct horse battery", "owner")
    assert (await accounts.authenticate("ANNA ", "correct horse battery")).display_name == "Anna K."
    assert await accounts.authenticate("anna", "wrong password") is None
    assert await accounts.authenticate("nobody", "correct horse battery") is None


async def test_sessions_expire_and_end(accounts: Accounts) -> None:
    account = await accounts.create("anna", "correct horse battery")
    token = await accounts.start_session(account)
    assert (await accounts.session(token)).username == "anna"
    assert await accounts.session(token + "x") is None
    await asyncio.sleep(1.2)  # the fixture's sessions last one second
    assert await accounts.session(token) is None
    token = await accounts.start_session(account)
    await accounts.end_session(token)
    assert await accounts.session(token) is None


async def test_repeated_failed_logins_lock_the_account_for_a_while(accounts: Accounts) -> None:
    await accounts.create("anna", "correct horse battery")
    for _ in range(MAX_FAILURES):
        assert await accounts.authenticate("anna", "guess") is None
    with pytest.raises(AccountError, match="too many failed logins"):
        await accounts.authenticate("anna", "correct horse battery")
