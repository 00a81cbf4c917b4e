"""Loyalty writes: each account keeps the time its next lot falls due (release or expiry), so
a write settles only when something is due; a plain earn, adjust or redemption is one function
call that does all its work while it holds the account's row.

Revision ID: 0011_loyalty_writes
Revises: 0010_ingest_planner_stats
Create Date: 2026-11-22 21:30:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.rls import grant_app_role, migration_app_role

revision: str = "0011_loyalty_writes"
down_revision: str | None = "0010_ingest_planner_stats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The earliest time any lot of the account needs settling: a pending lot's release, an
# available lot's expiry while it holds points. NULL: nothing will ever fall due.
DUE_OF_LOTS = """
SELECT min(CASE WHEN l.state = 'pending' THEN l.available_at ELSE l.expires_at END)
FROM loyalty_lots l
WHERE l.workspace_id = a.workspace_id AND l.account_id = a.id
  AND (l.state = 'pending' OR (l.state = 'available' AND l.remaining > 0))
"""

# The service never changes a lot's times; a manual correction of them (a data fix) must not
# leave the account's due time later than the lot's, or the account would skip settling it.
LOT_TIMES_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_loyalty_lot_times_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE loyalty_accounts
  SET next_due_at = LEAST(next_due_at,
                          CASE WHEN NEW.state = 'pending' THEN NEW.available_at
                               WHEN NEW.state = 'available' AND NEW.remaining > 0
                               THEN NEW.expires_at END)
  WHERE workspace_id = NEW.workspace_id AND id = NEW.account_id
    AND (NEW.state = 'pending' OR (NEW.state = 'available' AND NEW.remaining > 0));
  RETURN NULL;
END
$$
"""

# Python's datetime.isoformat() of a UTC time (suffix '+00:00'), or the API's form ('Z'): the
# ledger stores the one and events carry the other, as the service writes them elsewhere.
ISOFORMAT_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_isoformat(value timestamptz, suffix text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT to_char(value AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
    || CASE WHEN extract(microseconds FROM value)::bigint % 1000000 = 0 THEN ''
            ELSE to_char(value AT TIME ZONE 'UTC', '.US') END
    || suffix
$$
"""

# A UUIDv7 whose 12 bits after the version hold ``counter``: ids made in one loop sort in the
# loop's order even within a millisecond (as the service's own UUIDv7s do).
UUID7_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_uuid7(counter integer) RETURNS uuid
LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
    || int2send((28672 | (counter & 4095))::smallint)
    || substring(uuid_send(gen_random_uuid()) FROM 9),
    'hex')::uuid
$$
"""

# One ledger write on one account, in one statement: lock the account, add a lot (points > 0)
# or spend available lots in consumption order (points < 0), append the entry, its
# allocations, the redemption (when given an id), the outbox events, re-derive the tier and
# update the account's counters; then return what the response shows. It writes nothing and
# answers 'unsettled' when the account has a lot due (or a debt to repay): the caller, which
# then holds the lock, takes the general path. 'insufficient': not enough available points,
# nothing written. No row: no such account. Kept in step with app.loyalty.ledger.
WRITE_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_loyalty_write(
  p_workspace_id uuid, p_account_id uuid, p_kind text, p_points bigint, p_reason text,
  p_api_key_id uuid, p_details jsonb, p_entry_id uuid, p_lot_id uuid, p_redemption_id uuid,
  p_event_id uuid, p_tier_event_id uuid)
RETURNS TABLE (
  outcome text, program_id uuid, contact_id uuid, tier_id uuid, allow_negative boolean,
  available bigint, pending bigint, debt bigint, balance bigint, lifetime_earned bigint,
  redeemed bigint, expired bigint, version bigint, next_due_at timestamptz,
  created_at timestamptz, updated_at timestamptz, recorded_at timestamptz, details jsonb,
  tier_basis text, tier_window_months integer, qualifying bigint, tier_name text,
  tier_threshold bigint, next_tier_id uuid, next_tier_name text, next_tier_threshold bigint,
  expiring_30 bigint, expiring_60 bigint, expiring_90 bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  a loyalty_accounts%ROWTYPE;
  p loyalty_programs%ROWTYPE;
  v_now timestamptz := transaction_timestamp();
  v_expires timestamptz;
  v_details jsonb := p_details;
  v_left bigint;
  v_taken bigint;
  v_count integer := 0;
  v_lot record;
  v_tier loyalty_tiers%ROWTYPE;
  v_next loyalty_tiers%ROWTYPE;
  v_before uuid;
  v_qualifying bigint := 0;
BEGIN
  -- Bound here too, so that the call can be a transaction of its own (the service's direct
  -- pool); inside a request's transaction it is already bound to the same workspace.
  PERFORM set_config('app.workspace_id', p_workspace_id::text, true);
  SELECT * INTO a FROM loyalty_accounts x
  WHERE x.workspace_id = p_workspace_id AND x.id = p_account_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF a.next_due_at <= v_now OR a.debt <> 0 THEN
    outcome := 'unsettled';
    RETURN NEXT;
    RETURN;
  END IF;
  IF p_points < 0 AND a.available < -p_points THEN
    outcome := 'insufficient';
    available := a.available;
    RETURN NEXT;
    RETURN;
  END IF;
  SELECT * INTO p FROM loyalty_programs x
  WHERE x.workspace_id = p_workspace_id AND x.id = a.program_id;

  a.version := a.version + 1;
  a.available := a.available + p_points;
  a.balance := a.available + a.pending;
  IF p_kind = 'earn' THEN
    a.lifetime_earned := a.lifetime_earned + p_points;
  ELSIF p_kind = 'redeem' THEN
    a.redeemed := a.redeemed - p_points;
  END IF;
  IF p_points > 0 THEN
    IF p.expiry_months IS NOT NULL THEN
      v_expires := v_now + make_interval(months => p.expiry_months);
    END IF;
    v_details := v_details || jsonb_build_object(
      'available_at', crm_isoformat(v_now, '+00:00'),
      'expires_at', crm_isoformat(v_expires, '+00:00'));
    a.next_due_at := LEAST(a.next_due_at, v_expires);
  END IF;

  INSERT INTO loyalty_entries (
    workspace_id, id, account_id, program_id, seq, kind, amount, available_change,
    pending_change, balance_after, available_after, pending_after, redemption_id, reason,
    qualifying_points, qualifying_spend_minor, qualifies_at, effective_at, recorded_at,
    api_key_id, details)
  VALUES (
    p_workspace_id, p_entry_id, a.id, a.program_id, a.version, p_kind, p_points, p_points,
    0, a.balance, a.available, a.pending, p_redemption_id, p_reason,
    CASE WHEN p_kind = 'earn' THEN p_points ELSE 0 END, 0, v_now, v_now, v_now,
    p_api_key_id, v_details);

  IF p_points > 0 THEN
    INSERT INTO loyalty_lots (
      workspace_id, id, account_id, entry_id, original, remaining, state, available_at,
      expires_at, created_at)
    VALUES (
      p_workspace_id, p_lot_id, a.id, p_entry_id, p_points, p_points, 'available', v_now,
      v_expires, v_now);
  ELSE
    v_left := -p_points;
    FOR v_lot IN
      SELECT l.id, l.remaining FROM loyalty_lots l
      WHERE l.workspace_id = p_workspace_id AND l.account_id = a.id
        AND l.state = 'available' AND l.remaining > 0
      ORDER BY l.expires_at ASC NULLS LAST, l.available_at, l.id
    LOOP
      v_taken := LEAST(v_left, v_lot.remaining);
      UPDATE loyalty_lots l SET remaining = l.remaining - v_taken
      WHERE l.workspace_id = p_workspace_id AND l.id = v_lot.id;
      INSERT INTO loyalty_allocations (workspace_id, id, entry_id, lot_id, amount)
      VALUES (p_workspace_id, crm_uuid7(v_count), p_entry_id, v_lot.id, -v_taken);
      v_count := v_count + 1;
      v_left := v_left - v_taken;
      EXIT WHEN v_left = 0;
    END LOOP;
    IF v_left > 0 THEN
      RAISE EXCEPTION 'lots of account % do not cover its available points', a.id;
    END IF;
    IF p_redemption_id IS NOT NULL THEN
      INSERT INTO loyalty_redemptions (
        workspace_id, id, account_id, points, status, entry_id, reason, created_at)
      VALUES (
        p_workspace_id, p_redemption_id, a.id, -p_points, 'completed', p_entry_id, p_reason,
        v_now);
    END IF;
  END IF;

  INSERT INTO outbox_events (workspace_id, id, type, aggregate_type, aggregate_id, data)
  VALUES (
    p_workspace_id, p_event_id,
    CASE p_kind WHEN 'redeem' THEN 'loyalty.redeemed' WHEN 'earn' THEN 'loyalty.earned'
                ELSE 'loyalty.adjusted' END,
    'loyalty_account', a.id,
    jsonb_build_object(
      'id', p_entry_id, 'account_id', a.id, 'seq', a.version, 'kind', p_kind,
      'amount', p_points, 'available_change', p_points, 'pending_change', 0,
      'balance_after', a.balance, 'available_after', a.available,
      'pending_after', a.pending, 'reference', NULL, 'reverses_entry_id', NULL,
      'clawback_of_entry_id', NULL, 'redemption_id', p_redemption_id, 'reason', p_reason,
      'effective_at', crm_isoformat(v_now, 'Z'), 'recorded_at', crm_isoformat(v_now, 'Z'),
      'api_key_id', p_api_key_id, 'details', v_details, 'contact_id', a.contact_id));

  -- The tier the ledger earns now (summed only for programmes with tiers, as elsewhere).
  IF EXISTS (SELECT 1 FROM loyalty_tiers t
             WHERE t.workspace_id = p_workspace_id AND t.program_id = a.program_id) THEN
    SELECT COALESCE(sum(CASE WHEN p.tier_basis = 'spend' THEN e.qualifying_spend_minor
                             ELSE e.qualifying_points END), 0)::bigint
    INTO v_qualifying
    FROM loyalty_entries e
    WHERE e.workspace_id = p_workspace_id AND e.account_id = a.id
      AND e.qualifies_at > v_now - make_interval(months => p.tier_window_months);
    SELECT * INTO v_tier FROM loyalty_tiers t
    WHERE t.workspace_id = p_workspace_id AND t.program_id = a.program_id
      AND t.threshold <= v_qualifying
    ORDER BY t.threshold DESC LIMIT 1;
    SELECT * INTO v_next FROM loyalty_tiers t
    WHERE t.workspace_id = p_workspace_id AND t.program_id = a.program_id
      AND t.threshold > v_qualifying
    ORDER BY t.threshold LIMIT 1;
  END IF;
  IF v_tier.id IS DISTINCT FROM a.tier_id THEN
    v_before := a.tier_id;
    a.tier_id := v_tier.id;
    INSERT INTO outbox_events (workspace_id, id, type, aggregate_type, aggregate_id, data)
    VALUES (
      p_workspace_id, p_tier_event_id, 'loyalty.tier_changed', 'loyalty_account', a.id,
      jsonb_build_object(
        'account_id', a.id, 'contact_id', a.contact_id, 'program_id', a.program_id,
        'from_tier_id', v_before, 'to_tier_id', a.tier_id, 'qualifying', v_qualifying));
  END IF;

  UPDATE loyalty_accounts x SET
    version = a.version, updated_at = v_now, available = a.available, balance = a.balance,
    lifetime_earned = a.lifetime_earned, redeemed = a.redeemed,
    next_due_at = a.next_due_at, tier_id = a.tier_id
  WHERE x.workspace_id = p_workspace_id AND x.id = a.id;

  outcome := 'written';
  program_id := a.program_id;
  contact_id := a.contact_id;
  tier_id := a.tier_id;
  allow_negative := a.allow_negative;
  available := a.available;
  pending := a.pending;
  debt := a.debt;
  balance := a.balance;
  lifetime_earned := a.lifetime_earned;
  redeemed := a.redeemed;
  expired := a.expired;
  version := a.version;
  next_due_at := a.next_due_at;
  created_at := a.created_at;
  updated_at := v_now;
  recorded_at := v_now;
  details := v_details;
  tier_basis := p.tier_basis;
  tier_window_months := p.tier_window_months;
  qualifying := v_qualifying;
  tier_name := v_tier.name;
  tier_threshold := v_tier.threshold;
  next_tier_id := v_next.id;
  next_tier_name := v_next.name;
  next_tier_threshold := v_next.threshold;
  -- No lot holding points expires before the due time: past 90 days, nothing to sum.
  expiring_30 := 0;
  expiring_60 := 0;
  expiring_90 := 0;
  IF a.next_due_at <= v_now + interval '90 days' THEN
    SELECT
      COALESCE(sum(l.remaining) FILTER (WHERE l.expires_at <= v_now + interval '30 days'), 0),
      COALESCE(sum(l.remaining) FILTER (WHERE l.expires_at <= v_now + interval '60 days'), 0),
      COALESCE(sum(l.remaining), 0)
    INTO expiring_30, expiring_60, expiring_90
    FROM loyalty_lots l
    WHERE l.workspace_id = p_workspace_id AND l.account_id = a.id
      AND l.state IN ('pending', 'available') AND l.remaining > 0
      AND l.expires_at <= v_now + interval '90 days';
  END IF;
  RETURN NEXT;
END
$$
"""


def upgrade() -> None:
    op.add_column(
        "loyalty_accounts",
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.execute(f"UPDATE loyalty_accounts a SET next_due_at = ({DUE_OF_LOTS})")
    op.execute(LOT_TIMES_FUNCTION)
    op.execute(
        "CREATE TRIGGER lot_times_changed AFTER UPDATE OF available_at, expires_at "
        "ON loyalty_lots FOR EACH ROW EXECUTE FUNCTION crm_loyalty_lot_times_changed()"
    )
    op.execute(ISOFORMAT_FUNCTION)
    op.execute(UUID7_FUNCTION)
    op.execute(WRITE_FUNCTION)
    for statement in grant_app_role(migration_app_role()):
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS crm_loyalty_write(uuid, uuid, text, bigint, text, uuid, jsonb, "
        "uuid, uuid, uuid, uuid, uuid)"
    )
    op.execute("DROP FUNCTION IF EXISTS crm_uuid7(integer)")
    op.execute("DROP FUNCTION IF EXISTS crm_isoformat(timestamptz, text)")
    op.execute("DROP TRIGGER IF EXISTS lot_times_changed ON loyalty_lots")
    op.execute("DROP FUNCTION IF EXISTS crm_loyalty_lot_times_changed()")
    op.drop_column("loyalty_accounts", "next_due_at")
