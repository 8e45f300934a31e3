-- The rules of src/core/lockout.ts, in SQL, for the statements that decide in the database. Each
-- function is pure (IMMUTABLE: no table, no clock; time is an argument) and mirrors the named
-- TypeScript function line by line; test/store-postgres-rules.test.ts compares the two on many
-- inputs. A change to either is a change to both (and a new migration here).

-- A mailbox's failure state of one kind (core/model.ts FailureState).
CREATE TYPE memfa_failure AS (consecutive integer, locked_until bigint, hard_locked boolean, last_failure_at bigint);

-- recordFailure's delay: min(base * 2^k, max) for k >= 0, exact in bigint (b << k when it fits
-- under max; 2^k beyond 62 bits exceeds any max with base >= 1).
CREATE FUNCTION memfa_lock_delay(k integer, base_ms bigint, max_ms bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN k >= 62 OR base_ms > (max_ms >> k) THEN max_ms ELSE base_ms << k END;

-- recordFailure(f, now, policy); a null `consecutive` is emptyFailures().
CREATE FUNCTION memfa_failed(consecutive integer, locked_until bigint, hard_locked boolean, now_ms bigint,
  threshold integer, base_ms bigint, max_ms bigint, hard_after integer) RETURNS memfa_failure
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  n integer := COALESCE(consecutive, 0) + 1;
  until bigint := locked_until;
BEGIN
  IF n >= threshold THEN
    until := GREATEST(COALESCE(locked_until, 0), now_ms + memfa_lock_delay(n - threshold, base_ms, max_ms));
  END IF;
  RETURN ROW(n, until, COALESCE(hard_locked, false) OR n >= hard_after, now_ms)::memfa_failure;
END $$;

-- recordKindSuccess for one kind: the state is cleared, but a hard lock survives (recordSuccess).
CREATE FUNCTION memfa_succeeded(consecutive integer, locked_until bigint, hard_locked boolean, last_failure_at bigint) RETURNS memfa_failure
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN hard_locked THEN ROW(consecutive, locked_until, hard_locked, last_failure_at)::memfa_failure
            ELSE ROW(NULL, NULL, NULL, NULL)::memfa_failure END;

-- lockState(f, now).locked: hard locked, or locked until a time still to come.
CREATE FUNCTION memfa_locked(hard_locked boolean, locked_until bigint, now_ms bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN COALESCE(hard_locked, false) OR (locked_until IS NOT NULL AND now_ms < locked_until);

-- A failure window of a client source or key (core/lockout.ts IpThrottleRecord).
CREATE TYPE memfa_ip_window AS (failures integer, mailboxes text[], window_start bigint, locked_until bigint);

-- recordIpFailure(rec, mailbox, now, policy); a null `failures` is no record.
CREATE FUNCTION memfa_ip_failed(failures integer, mailboxes text[], window_start bigint, locked_until bigint, member text, now_ms bigint,
  max_failures integer, window_ms bigint, distinct_mailboxes integer, block_ms bigint) RETURNS memfa_ip_window
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  cur_failures integer;
  cur_mailboxes text[];
  cur_start bigint;
  until bigint;
  n integer;
  members text[];
BEGIN
  IF failures IS NULL THEN
    failures := 0; mailboxes := '{}'; window_start := now_ms; locked_until := NULL;
  END IF;
  -- currentWindow: a new, empty window once a block or the window is over.
  IF (locked_until IS NOT NULL AND now_ms >= locked_until) OR now_ms - window_start >= window_ms THEN
    cur_failures := 0; cur_mailboxes := '{}'; cur_start := now_ms;
  ELSE
    cur_failures := failures; cur_mailboxes := mailboxes; cur_start := window_start;
  END IF;
  until := CASE WHEN locked_until IS NOT NULL AND now_ms < locked_until THEN locked_until END;
  n := cur_failures + 1;
  members := CASE WHEN member = ANY (cur_mailboxes) THEN cur_mailboxes ELSE cur_mailboxes || member END;
  IF n >= max_failures OR cardinality(members) >= distinct_mailboxes THEN
    RETURN ROW(n, members[1:distinct_mailboxes], cur_start, GREATEST(COALESCE(until, 0), now_ms + block_ms))::memfa_ip_window;
  END IF;
  RETURN ROW(n, members, cur_start, until)::memfa_ip_window;
END $$;

-- When a failure window stops mattering (nothing locked, nothing counted): its block's end, or
-- the end of a window with failures; 0 for nothing.
CREATE FUNCTION memfa_ip_window_end(failures integer, window_start bigint, locked_until bigint, window_ms bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN failures IS NULL THEN 0
            WHEN locked_until IS NOT NULL THEN locked_until
            WHEN failures > 0 THEN window_start + window_ms
            ELSE 0 END;

-- The per-source state (core/lockout.ts IpSourceState) after a reservation or a settlement, with
-- the reservation's refusal, and when the state becomes idle (ipSourceIdle; null: not while
-- attempts are in flight).
CREATE TYPE memfa_ip_source AS (
  refusal text, refused_until bigint,
  f_failures integer, f_mailboxes text[], f_window_start bigint, f_locked_until bigint,
  in_flight text[], creating integer, created integer, created_since bigint, idle_from bigint);

CREATE FUNCTION memfa_ip_source_idle_from(s memfa_ip_source, window_ms bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN cardinality(s.in_flight) > 0 OR s.creating > 0 THEN NULL
            ELSE GREATEST(CASE WHEN s.created > 0 THEN s.created_since + window_ms ELSE 0 END,
                          memfa_ip_window_end(s.f_failures, s.f_window_start, s.f_locked_until, window_ms)) END;

-- reserveIpAttempt(state, mailbox, creates, now, policy): the state after a granted reservation
-- (refusal null), or the state unchanged with the refusal ('ip-failures', 'ip-mailboxes',
-- 'ip-enrolments') and its until. retry_ms: IN_FLIGHT_RETRY_MS.
CREATE FUNCTION memfa_ip_reserved(s memfa_ip_source, mailbox text, creates boolean, now_ms bigint,
  max_failures integer, window_ms bigint, distinct_mailboxes integer, retry_ms bigint) RETURNS memfa_ip_source
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  w_failures integer := 0;
  w_mailboxes text[] := '{}';
  n integer;
  made integer;
BEGIN
  s.refusal := NULL; s.refused_until := NULL;
  IF s.f_failures IS NOT NULL AND s.f_locked_until IS NOT NULL AND now_ms < s.f_locked_until THEN
    s.refusal := CASE WHEN cardinality(s.f_mailboxes) >= distinct_mailboxes THEN 'ip-mailboxes' ELSE 'ip-failures' END;
    s.refused_until := s.f_locked_until;
    RETURN s;
  END IF;
  IF s.f_failures IS NOT NULL AND NOT ((s.f_locked_until IS NOT NULL AND now_ms >= s.f_locked_until) OR now_ms - s.f_window_start >= window_ms) THEN
    w_failures := s.f_failures; w_mailboxes := s.f_mailboxes;
  END IF;
  IF w_failures + cardinality(s.in_flight) >= max_failures THEN
    s.refusal := 'ip-failures'; s.refused_until := now_ms + retry_ms;
    RETURN s;
  END IF;
  SELECT count(DISTINCT m) INTO n FROM unnest(w_mailboxes || s.in_flight || mailbox) AS m;
  IF n > distinct_mailboxes THEN
    s.refusal := 'ip-mailboxes'; s.refused_until := now_ms + retry_ms;
    RETURN s;
  END IF;
  IF creates THEN
    made := CASE WHEN now_ms - s.created_since >= window_ms THEN 0 ELSE s.created END;
    IF made + s.creating >= max_failures THEN
      s.refusal := 'ip-enrolments';
      s.refused_until := CASE WHEN made >= max_failures THEN s.created_since + window_ms ELSE now_ms + retry_ms END;
      RETURN s;
    END IF;
  END IF;
  s.in_flight := s.in_flight || mailbox;
  s.creating := s.creating + CASE WHEN creates THEN 1 ELSE 0 END;
  s.idle_from := NULL;
  RETURN s;
END $$;

-- settleIpAttempt(state, mailbox, creates, outcome, now, policy); idle_from <= now_ms: nothing left
-- worth keeping (the caller drops the row).
CREATE FUNCTION memfa_ip_settled(s memfa_ip_source, mailbox text, creates boolean, outcome text, now_ms bigint,
  max_failures integer, window_ms bigint, distinct_mailboxes integer, block_ms bigint) RETURNS memfa_ip_source
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  i integer := array_position(s.in_flight, mailbox);
  w memfa_ip_window;
  made integer;
BEGIN
  s.refusal := NULL; s.refused_until := NULL;
  IF i IS NOT NULL THEN
    s.in_flight := s.in_flight[1:i - 1] || s.in_flight[i + 1:];
    IF creates THEN s.creating := GREATEST(0, s.creating - 1); END IF;
  END IF;
  IF outcome = 'failure' THEN
    w := memfa_ip_failed(s.f_failures, s.f_mailboxes, s.f_window_start, s.f_locked_until, mailbox, now_ms,
      max_failures, window_ms, distinct_mailboxes, block_ms);
    s.f_failures := w.failures; s.f_mailboxes := w.mailboxes; s.f_window_start := w.window_start; s.f_locked_until := w.locked_until;
  END IF;
  made := CASE WHEN now_ms - s.created_since >= window_ms THEN 0 ELSE s.created END;
  IF made = 0 THEN s.created_since := now_ms; END IF;
  IF outcome = 'created' THEN made := made + 1; END IF;
  s.created := made;
  s.idle_from := memfa_ip_source_idle_from(s, window_ms);
  RETURN s;
END $$;
