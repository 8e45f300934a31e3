-- A code check's reservation and settlement of its client source (store/postgres/throttles.ts
-- reserveAttempt, settleAttempt), each ONE call: the daemon used to send four or five statements
-- for each (BEGIN, the row made, the decision, for a settlement the sweep, COMMIT), and every
-- round trip costs both sides more CPU than the statement itself. These functions do what those
-- statements did, in the same order, with the rules of 002_rules.sql. They are VOLATILE, so under
-- READ COMMITTED each statement inside takes a fresh snapshot: the lock taken after the row is
-- made sees the row made, or another daemon's latest committed version of it.

-- The row of `p_source`, made if need be (an empty state, newIpSource, idle from its making) and
-- locked (FOR UPDATE: waits for another daemon's change, then reads its latest version), as the
-- rules' memfa_ip_source (refusal and refused_until null, idle_from its expires_at); null when
-- a sweep took the row between its making and its lock (it only goes when idle).
CREATE FUNCTION memfa_ip_source_locked(p_source text, p_now bigint) RETURNS memfa_ip_source
LANGUAGE plpgsql AS $$
DECLARE
  cur ip_sources;
BEGIN
  INSERT INTO ip_sources (source, in_flight, creating, created, created_since, expires_at, touched_at)
    VALUES (p_source, '{}', 0, 0, p_now, p_now, p_now) ON CONFLICT (source) DO NOTHING;
  SELECT * INTO cur FROM ip_sources WHERE source = p_source FOR UPDATE;
  IF NOT FOUND THEN RETURN NULL; END IF;
  RETURN ROW(NULL, NULL, cur.f_failures, cur.f_mailboxes, cur.f_window_start, cur.f_locked_until,
    cur.in_flight, cur.creating, cur.created, cur.created_since, cur.expires_at)::memfa_ip_source;
END $$;

-- reserveIpAttempt on the locked row, recorded when granted: one row (refusal null: granted), or
-- none when the row kept disappearing for `tries` tries.
CREATE FUNCTION memfa_reserve_attempt(p_source text, p_mailbox text, p_creates boolean, p_now bigint,
  max_failures integer, window_ms bigint, distinct_mailboxes integer, retry_ms bigint, tries integer)
RETURNS TABLE (refusal text, refused_until bigint)
LANGUAGE plpgsql AS $$
DECLARE
  s memfa_ip_source;
  r memfa_ip_source;
BEGIN
  FOR i IN 1..tries LOOP
    s := memfa_ip_source_locked(p_source, p_now);
    CONTINUE WHEN s IS NULL;
    r := memfa_ip_reserved(s, p_mailbox, p_creates, p_now, max_failures, window_ms, distinct_mailboxes, retry_ms);
    IF r.refusal IS NULL THEN
      UPDATE ip_sources SET in_flight = r.in_flight, creating = r.creating, expires_at = NULL, touched_at = p_now WHERE source = p_source;
    END IF;
    refusal := r.refusal;
    refused_until := r.refused_until;
    RETURN NEXT;
    RETURN;
  END LOOP;
END $$;

-- settleIpAttempt on the locked row, written, then the sweep: this source when nothing is left
-- worth keeping, and at most `sweep_rows` other idle ones, only those no other transaction holds
-- (SKIP LOCKED: concurrent settlements would otherwise all pick the same oldest rows and wait for
-- each other's commits), each checked again on its latest version so that a reservation made
-- meanwhile stays. One row: the state before and after (for sourceBlockStarted), or none when
-- the row kept disappearing for `tries` tries.
CREATE FUNCTION memfa_settle_attempt(p_source text, p_mailbox text, p_creates boolean, p_outcome text, p_now bigint,
  max_failures integer, window_ms bigint, distinct_mailboxes integer, block_ms bigint, sweep_rows integer, tries integer)
RETURNS TABLE (before_state memfa_ip_source, after_state memfa_ip_source)
LANGUAGE plpgsql AS $$
DECLARE
  s memfa_ip_source;
  r memfa_ip_source;
BEGIN
  FOR i IN 1..tries LOOP
    s := memfa_ip_source_locked(p_source, p_now);
    CONTINUE WHEN s IS NULL;
    r := memfa_ip_settled(s, p_mailbox, p_creates, p_outcome, p_now, max_failures, window_ms, distinct_mailboxes, block_ms);
    UPDATE ip_sources SET f_failures = r.f_failures, f_mailboxes = r.f_mailboxes, f_window_start = r.f_window_start,
      f_locked_until = r.f_locked_until, in_flight = r.in_flight, creating = r.creating, created = r.created,
      created_since = r.created_since, expires_at = r.idle_from, touched_at = p_now
      WHERE source = p_source;
    DELETE FROM ip_sources
      WHERE source = ANY (ARRAY(SELECT x.source FROM ip_sources x WHERE x.expires_at <= p_now AND x.source <> p_source
                                LIMIT sweep_rows FOR UPDATE SKIP LOCKED) || p_source)
        AND expires_at <= p_now;
    before_state := s;
    after_state := r;
    RETURN NEXT;
    RETURN;
  END LOOP;
END $$;
