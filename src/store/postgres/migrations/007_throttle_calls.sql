-- The throttles' check-then-acts (store/postgres/throttles.ts), each ONE call: a code check's
-- reservation and settlement of its client source, a failure of a mailbox without a record, a
-- failure of a key's window (login.check). The daemon used to send four or five statements for
-- each (BEGIN, the row made or read, the decision, the sweep, COMMIT), and every round trip costs
-- both sides more CPU than the statement itself. These functions do what those statements did,
-- in the same order, with the rules of 002_rules.sql. They are VOLATILE, so under READ COMMITTED
-- each statement inside takes a fresh snapshot: the lock taken after the row is made sees the
-- row made, or another daemon's latest committed version of it.

-- The row of `p_source`, made if need be (an empty state, newIpSource, idle from its making) and
-- locked (FOR UPDATE: waits for another daemon's change, then reads its latest version), as the
-- rules' memfa_ip_source (refusal and refused_until null, idle_from its expires_at). A sweep may
-- take the row between its making and its lock (it only goes when idle): it is made again, up
-- to `tries` times; null when it kept disappearing.
CREATE FUNCTION memfa_ip_source_locked(p_source text, p_now bigint, tries integer) RETURNS memfa_ip_source
LANGUAGE plpgsql AS $$
DECLARE
  cur ip_sources;
BEGIN
  FOR i IN 1..tries LOOP
    INSERT INTO ip_sources (source, in_flight, creating, created, created_since, expires_at, touched_at)
      VALUES (p_source, '{}', 0, 0, p_now, p_now, p_now) ON CONFLICT (source) DO NOTHING;
    SELECT * INTO cur FROM ip_sources WHERE source = p_source FOR UPDATE;
    IF FOUND THEN
      RETURN ROW(NULL, NULL, cur.f_failures, cur.f_mailboxes, cur.f_window_start, cur.f_locked_until,
        cur.in_flight, cur.creating, cur.created, cur.created_since, cur.expires_at)::memfa_ip_source;
    END IF;
  END LOOP;
  RETURN NULL;
END $$;

-- reserveIpAttempt on the locked row, recorded when granted: one row (refusal null: granted), or
-- none when the row kept disappearing.
CREATE FUNCTION memfa_reserve_attempt(p_source text, p_mailbox text, p_creates boolean, p_now bigint,
  max_failures integer, window_ms bigint, distinct_mailboxes integer, retry_ms bigint, tries integer)
RETURNS TABLE (refusal text, refused_until bigint)
LANGUAGE plpgsql AS $$
DECLARE
  s memfa_ip_source := memfa_ip_source_locked(p_source, p_now, tries);
  r memfa_ip_source;
BEGIN
  IF s IS NULL THEN RETURN; END IF;
  r := memfa_ip_reserved(s, p_mailbox, p_creates, p_now, max_failures, window_ms, distinct_mailboxes, retry_ms);
  IF r.refusal IS NULL THEN
    UPDATE ip_sources SET in_flight = r.in_flight, creating = r.creating, expires_at = NULL, touched_at = p_now WHERE source = p_source;
  END IF;
  refusal := r.refusal;
  refused_until := r.refused_until;
  RETURN NEXT;
END $$;

-- settleIpAttempt on the locked row, written, then the sweep: this source when nothing is left
-- worth keeping, and at most `sweep_rows` other idle ones, only those no other transaction holds
-- (SKIP LOCKED: concurrent settlements would otherwise all pick the same oldest rows and wait for
-- each other's commits), each checked again on its latest version so that a reservation made
-- meanwhile stays. One row: the state before and after (for sourceBlockStarted), or none when
-- the row kept disappearing.
CREATE FUNCTION memfa_settle_attempt(p_source text, p_mailbox text, p_creates boolean, p_outcome text, p_now bigint,
  max_failures integer, window_ms bigint, distinct_mailboxes integer, block_ms bigint, sweep_rows integer, tries integer)
RETURNS TABLE (before_state memfa_ip_source, after_state memfa_ip_source)
LANGUAGE plpgsql AS $$
DECLARE
  s memfa_ip_source := memfa_ip_source_locked(p_source, p_now, tries);
  r memfa_ip_source;
BEGIN
  IF s IS NULL THEN RETURN; END IF;
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
END $$;

-- One failure of a mailbox without a record (throttles.ts recordUnstoredFailure, core/lockout.ts
-- recordFailure), made or counted on its row by one INSERT ... ON CONFLICT, whose conflict path
-- locks the row and decides on its latest version: an entry past unstoredFailureExpired starts
-- again from none; a locked one is left as it is. counted: the failure was counted (then the
-- sweep of at most sweep_rows expired entries follows); state: the entry after it, or the one
-- that refused it, read under the lock the conflict took.
CREATE FUNCTION memfa_unstored_failure(p_address text, p_now bigint, threshold integer, base_ms bigint, max_ms bigint, hard_after integer, sweep_rows integer)
RETURNS TABLE (counted boolean, state memfa_failure)
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO unstored_failures AS u (address, consecutive, locked_until, hard_locked, last_failure_at, expires_at)
    SELECT p_address, (f).consecutive, (f).locked_until, (f).hard_locked, (f).last_failure_at, GREATEST(COALESCE((f).locked_until, 0), p_now) + max_ms
    FROM (SELECT memfa_failed(NULL, NULL, NULL, p_now, threshold, base_ms, max_ms, hard_after) AS f) x
  ON CONFLICT (address) DO UPDATE SET (consecutive, locked_until, hard_locked, last_failure_at, expires_at) =
    (SELECT (f).consecutive, (f).locked_until, (f).hard_locked, (f).last_failure_at, GREATEST(COALESCE((f).locked_until, 0), p_now) + max_ms
     FROM (SELECT CASE WHEN p_now >= GREATEST(COALESCE(u.locked_until, 0), COALESCE(u.last_failure_at, 0)) + max_ms
                       THEN memfa_failed(NULL, NULL, NULL, p_now, threshold, base_ms, max_ms, hard_after)
                       ELSE memfa_failed(u.consecutive, u.locked_until, u.hard_locked, p_now, threshold, base_ms, max_ms, hard_after) END AS f) y)
  WHERE p_now >= GREATEST(COALESCE(u.locked_until, 0), COALESCE(u.last_failure_at, 0)) + max_ms
     OR NOT memfa_locked(u.hard_locked, u.locked_until, p_now)
  RETURNING u.consecutive, u.locked_until, u.hard_locked, u.last_failure_at INTO state;
  counted := FOUND;
  IF counted THEN
    DELETE FROM unstored_failures WHERE address IN (SELECT x.address FROM unstored_failures x WHERE x.expires_at <= p_now LIMIT sweep_rows FOR UPDATE SKIP LOCKED);
  ELSE
    SELECT u.consecutive, u.locked_until, u.hard_locked, u.last_failure_at INTO state FROM unstored_failures u WHERE u.address = p_address;
  END IF;
  RETURN NEXT;
END $$;

-- One failure of a key's failure window (throttles.ts recordWindowFailure, core/lockout.ts
-- recordIpFailure): the window before, read under its lock (null when there was none: of two
-- daemons making a key's first row at once, the second's conflict path counts on the first's
-- row, but it saw none before), the window after, then the sweep of at most sweep_rows windows
-- past their end that no other transaction holds.
CREATE FUNCTION memfa_window_failure(p_scope text, p_key text, p_member text, p_now bigint,
  max_failures integer, window_ms bigint, distinct_mailboxes integer, block_ms bigint, sweep_rows integer)
RETURNS TABLE (before_state memfa_ip_window, after_state memfa_ip_window)
LANGUAGE plpgsql AS $$
BEGIN
  SELECT c.failures, c.mailboxes, c.window_start, c.locked_until INTO before_state
    FROM window_counters c WHERE c.scope = p_scope AND c.key = p_key FOR UPDATE;
  INSERT INTO window_counters AS w (scope, key, failures, mailboxes, window_start, locked_until, expires_at)
    SELECT p_scope, p_key, (x).failures, (x).mailboxes, (x).window_start, (x).locked_until, GREATEST((x).window_start + window_ms, COALESCE((x).locked_until, 0))
    FROM (SELECT memfa_ip_failed(NULL, NULL, NULL, NULL, p_member, p_now, max_failures, window_ms, distinct_mailboxes, block_ms) AS x) s
  ON CONFLICT (scope, key) DO UPDATE SET (failures, mailboxes, window_start, locked_until, expires_at) =
    (SELECT (x).failures, (x).mailboxes, (x).window_start, (x).locked_until, GREATEST((x).window_start + window_ms, COALESCE((x).locked_until, 0))
     FROM (SELECT memfa_ip_failed(w.failures, w.mailboxes, w.window_start, w.locked_until, p_member, p_now, max_failures, window_ms, distinct_mailboxes, block_ms) AS x) s)
  RETURNING w.failures, w.mailboxes, w.window_start, w.locked_until INTO after_state;
  DELETE FROM window_counters WHERE (scope, key) IN (SELECT c.scope, c.key FROM window_counters c WHERE c.expires_at <= p_now LIMIT sweep_rows FOR UPDATE SKIP LOCKED)
    AND expires_at <= p_now;
  RETURN NEXT;
END $$;
