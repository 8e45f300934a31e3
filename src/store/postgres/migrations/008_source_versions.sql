-- A code check's source row in fewer versions, and the sweep of idle rows paced.
--
-- Most code checks come from a source with no row (no failures, nothing in flight) and leave
-- nothing once settled. With migration 007 such a check made four versions of its row (the
-- empty row made, the reservation written over it, the settlement written over that, the
-- deletion), each with its entry in the expiry index, and every settlement then swept: a scan
-- for idle rows whose cost grew with the dead versions until autovacuum came, a minute later at
-- best (at 500 checks a second, 0.6 ms of the server per settlement after ten seconds). Now:
--  * a reservation for a source with no row inserts the reserved state at once (one version);
--  * a settlement that leaves nothing worth keeping deletes its row instead of writing it first;
--  * the sweep of other idle rows runs when this settlement leaves a row that a sweep must take
--    later (so that idle rows cannot pile up faster than they are swept), or when the caller asks
--    (store/postgres/throttles.ts does, at most once a second per daemon, so that a source's
--    rows go once their windows end even when no failures come).
-- memfa_reserve_attempt and memfa_settle_attempt stay, for a daemon of the version before this
-- one still running against this schema: the settlement as memfa_settle_source sweeping always,
-- which is what it did.

-- memfa_reserve_attempt's decision, with the row of a new source inserted already reserved.
CREATE FUNCTION memfa_reserve_source(p_source text, p_mailbox text, p_creates boolean, p_now bigint,
  max_failures integer, window_ms bigint, distinct_mailboxes integer, retry_ms bigint, tries integer)
RETURNS TABLE (refusal text, refused_until bigint)
LANGUAGE plpgsql AS $$
DECLARE
  fresh memfa_ip_source := memfa_ip_reserved(ROW(NULL, NULL, NULL, NULL, NULL, NULL, '{}', 0, 0, p_now, p_now)::memfa_ip_source,
    p_mailbox, p_creates, p_now, max_failures, window_ms, distinct_mailboxes, retry_ms);
BEGIN
  IF fresh.refusal IS NULL THEN
    INSERT INTO ip_sources (source, in_flight, creating, created, created_since, expires_at, touched_at)
      VALUES (p_source, fresh.in_flight, fresh.creating, 0, p_now, NULL, p_now) ON CONFLICT (source) DO NOTHING;
    IF FOUND THEN
      refusal := NULL;
      refused_until := NULL;
      RETURN NEXT;
      RETURN;
    END IF;
  END IF;
  -- The source has a row (another daemon's, or one this policy refuses even empty): decided on
  -- its latest version, as before.
  RETURN QUERY SELECT * FROM memfa_reserve_attempt(p_source, p_mailbox, p_creates, p_now, max_failures, window_ms,
    distinct_mailboxes, retry_ms, tries);
END $$;

-- memfa_settle_attempt's settlement; the row deleted at once when nothing is left worth keeping,
-- and the sweep of at most sweep_rows other idle rows when this row stays idle until a later
-- time, or when p_sweep.
CREATE FUNCTION memfa_settle_source(p_source text, p_mailbox text, p_creates boolean, p_outcome text, p_now bigint,
  max_failures integer, window_ms bigint, distinct_mailboxes integer, block_ms bigint, sweep_rows integer, tries integer,
  p_sweep boolean)
RETURNS TABLE (before_state memfa_ip_source, after_state memfa_ip_source)
LANGUAGE plpgsql AS $$
DECLARE
  s memfa_ip_source := memfa_ip_source_locked(p_source, p_now, tries);
  r memfa_ip_source;
BEGIN
  IF s IS NULL THEN RETURN; END IF;
  r := memfa_ip_settled(s, p_mailbox, p_creates, p_outcome, p_now, max_failures, window_ms, distinct_mailboxes, block_ms);
  IF r.idle_from IS NOT NULL AND r.idle_from <= p_now THEN
    DELETE FROM ip_sources WHERE source = p_source;
  ELSE
    UPDATE ip_sources SET f_failures = r.f_failures, f_mailboxes = r.f_mailboxes, f_window_start = r.f_window_start,
      f_locked_until = r.f_locked_until, in_flight = r.in_flight, creating = r.creating, created = r.created,
      created_since = r.created_since, expires_at = r.idle_from, touched_at = p_now
      WHERE source = p_source;
  END IF;
  IF p_sweep OR r.idle_from > p_now THEN
    -- Each checked again on its latest version: a reservation made meanwhile keeps its row.
    DELETE FROM ip_sources
      WHERE source = ANY (ARRAY(SELECT x.source FROM ip_sources x WHERE x.expires_at <= p_now AND x.source <> p_source
                                LIMIT sweep_rows FOR UPDATE SKIP LOCKED))
        AND expires_at <= p_now;
  END IF;
  before_state := s;
  after_state := r;
  RETURN NEXT;
END $$;

CREATE OR REPLACE FUNCTION memfa_settle_attempt(p_source text, p_mailbox text, p_creates boolean, p_outcome text, p_now bigint,
  max_failures integer, window_ms bigint, distinct_mailboxes integer, block_ms bigint, sweep_rows integer, tries integer)
RETURNS TABLE (before_state memfa_ip_source, after_state memfa_ip_source)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY SELECT * FROM memfa_settle_source(p_source, p_mailbox, p_creates, p_outcome, p_now, max_failures,
    window_ms, distinct_mailboxes, block_ms, sweep_rows, tries, true);
END $$;
