"""The ledger write ``make bench`` drives from pgbench (``bench.workloads.ledger_script``): a
visit of the loyalty workloads, an earn then a redemption of as many points on one account, as
two calls of the service's own ``crm_loyalty_write``, each a transaction of its own."""

from __future__ import annotations

import pytest

from bench.workloads import LEDGER_ACCOUNTS, ledger_script

WORKSPACE = "01a20648-d2c2-774c-9051-f6ae2ae9bd87"
# crm_loyalty_write's parameters, in order (migration 0011_loyalty_writes).
PARAMETERS = (
    "workspace_id", "account_id", "kind", "points", "reason", "api_key_id", "details",
    "entry_id", "lot_id", "redemption_id", "event_id", "tier_event_id",
)  # fmt: skip


def _arguments(statement: str) -> dict[str, str]:
    """The call's arguments by parameter name (split at the commas outside parentheses)."""
    prefix, suffix = "SELECT * FROM crm_loyalty_write(", ");"
    assert statement.startswith(prefix)
    assert statement.endswith(suffix)
    arguments, depth, current = [], 0, ""
    for char in statement[len(prefix) : -len(suffix)]:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            arguments.append(current.strip())
            current = ""
        else:
            current += char
    arguments.append(current.strip())
    assert len(arguments) == len(PARAMETERS), arguments
    return dict(zip(PARAMETERS, arguments, strict=True))


def test_the_script_earns_then_redeems_as_many_points_on_one_of_the_accounts() -> None:
    script = ledger_script(WORKSPACE, 200)

    account = f"(SELECT id FROM {LEDGER_ACCOUNTS} WHERE n = :n)"
    new = "gen_random_uuid()"
    assert script == (
        "\\set n random(1, 200)\n"
        "\\set points random(1, 50)\n"
        "\\set spent -:points\n"
        f"SELECT * FROM crm_loyalty_write('{WORKSPACE}', {account}, 'earn', :points, "
        f"'in-store bonus', NULL, '{{}}'::jsonb, {new}, {new}, NULL, {new}, {new});\n"
        f"SELECT * FROM crm_loyalty_write('{WORKSPACE}', {account}, 'redeem', :spent, "
        f"'coffee voucher', NULL, '{{}}'::jsonb, {new}, NULL, {new}, {new}, {new});\n"
    )
    # Two statements, each its own implicit transaction: two writes per pgbench transaction.
    lines = script.splitlines()
    assert not any(line.upper().startswith(("BEGIN", "END", "COMMIT")) for line in lines)
    earn, redeem = (_arguments(line) for line in lines if not line.startswith("\\"))
    for call in (earn, redeem):
        assert call["workspace_id"] == f"'{WORKSPACE}'"
        assert call["account_id"] == account  # the same account for both
        assert call["api_key_id"] == "NULL"
        assert call["details"] == "'{}'::jsonb"
        assert {call[name] for name in ("entry_id", "event_id", "tier_event_id")} == {new}
    # An earn adds a lot and no redemption; a redemption spends as many points as were earned.
    assert (earn["kind"], earn["points"], earn["lot_id"], earn["redemption_id"]) == (
        "'earn'",
        ":points",
        new,
        "NULL",
    )
    assert (redeem["kind"], redeem["points"], redeem["lot_id"], redeem["redemption_id"]) == (
        "'redeem'",
        ":spent",
        "NULL",
        new,
    )
    assert "\\set spent -:points" in lines


def test_the_script_picks_among_as_many_accounts_as_it_is_given() -> None:
    assert ledger_script(WORKSPACE, 1).startswith("\\set n random(1, 1)\n")
    assert ledger_script(WORKSPACE, 400).startswith("\\set n random(1, 400)\n")


@pytest.mark.parametrize(
    ("workspace_id", "accounts", "error"),
    [
        (WORKSPACE, 0, "at least one account"),
        ("01a20648'; DROP TABLE loyalty_entries; --", 10, "UUID"),
    ],
)
def test_the_script_refuses_no_accounts_or_a_workspace_that_is_not_a_uuid(
    workspace_id: str, accounts: int, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        ledger_script(workspace_id, accounts)
