-- The audit trail of every daemon on this database (src/store/postgres/audit.ts): the same two
-- streams as the file trail (src/audit/trail.ts: security, logins), each ONE hash chain for all
-- nodes. A line is stored as the exact text src/audit/entry.ts defines, the bytes its hash is
-- taken of: the same line verifies the same way in a file and here, and `memfa store export` /
-- `import` carry it unchanged.
--
-- Order: the database decides it. memfa_audit_append locks the stream's head row, numbers and
-- chains a whole batch after it, inserts the lines and advances the head, in one statement; a
-- second node's batch waits on the row lock and chains after the first. The lock is held only
-- while the server does that, never across a round trip to a client.

-- One row per stream: the last line (seq and SHA-256 of its text, 64 zeros before the first) and
-- the floor, the seq of the oldest line the chain keeps (1; more when a chain that had lost its
-- oldest lines was imported). A few rows updated all the time: room for HOT updates.
CREATE TABLE audit_heads (
  stream text PRIMARY KEY CHECK (stream IN ('security', 'logins')),
  seq bigint NOT NULL CHECK (seq >= 0),
  hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  floor bigint NOT NULL DEFAULT 1 CHECK (floor >= 1 AND floor <= seq + 1)
) WITH (fillfactor = 50);
INSERT INTO audit_heads (stream, seq, hash) VALUES
  ('security', 0, repeat('0', 64)),
  ('logins', 0, repeat('0', 64));

-- One row per line. `line` is the line without its newline; the other columns repeat what the
-- line says, for the indexes of audit.query (verify checks that they agree with it), except
-- `node`: the daemon that wrote it (store.import: the name the import gives), not part of the
-- line's text (a file's lines name no node), so not covered by the chain.
CREATE TABLE audit_lines (
  stream text NOT NULL REFERENCES audit_heads,
  seq bigint NOT NULL,
  -- The line's "time", epoch milliseconds: the database's clock when the batch was chained.
  at bigint NOT NULL,
  node text NOT NULL,
  mailbox text COLLATE "C",
  domain text COLLATE "C" GENERATED ALWAYS AS (substring(mailbox FROM '@([^@]*)$')) STORED,
  action text NOT NULL,
  result text NOT NULL,
  line text NOT NULL,
  PRIMARY KEY (stream, seq)
);
CREATE INDEX audit_lines_at ON audit_lines (at);
CREATE INDEX audit_lines_mailbox ON audit_lines (mailbox, at) WHERE mailbox IS NOT NULL;
CREATE INDEX audit_lines_domain ON audit_lines (domain, at) WHERE domain IS NOT NULL;
CREATE INDEX audit_lines_action ON audit_lines (action, at);

-- Appends a batch to a stream: p_fields[i] is line i's text between its "time" and its "prev"
-- (entry.ts lineFields: "actor":…, through "details" if any), p_mailboxes/actions/results its
-- columns. Each line becomes {"seq":n,"time":ISO,<fields>,"prev":"<hash of the line before>"}.
-- Answers the first seq, the time (ISO, as entry.ts writes it), the prev of the first line, and
-- the hash of every line, in order.
CREATE FUNCTION memfa_audit_append(p_stream text, p_node text, p_fields text[], p_mailboxes text[], p_actions text[], p_results text[])
RETURNS TABLE (first_seq bigint, time_iso text, first_prev text, hashes text[])
LANGUAGE plpgsql AS $$
DECLARE
  head_seq bigint;
  prev text;
  at_ms bigint;
  n integer := coalesce(array_length(p_fields, 1), 0);
  lines text[] := '{}';
  hs text[] := '{}';
  one text;
BEGIN
  SELECT h.seq, h.hash INTO head_seq, prev FROM audit_heads h WHERE h.stream = p_stream FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'no audit stream %', p_stream USING ERRCODE = '22023'; END IF;
  -- Taken once the lock is held: times rise along the chain (unless the server's clock steps back).
  at_ms := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
  time_iso := to_char((timestamptz 'epoch' + at_ms * interval '1 millisecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
  first_seq := head_seq + 1;
  first_prev := prev;
  FOR i IN 1 .. n LOOP
    one := '{"seq":' || (head_seq + i) || ',"time":"' || time_iso || '",' || p_fields[i] || ',"prev":"' || prev || '"}';
    lines := lines || one;
    prev := encode(sha256(convert_to(one, 'UTF8')), 'hex');
    hs := hs || prev;
  END LOOP;
  INSERT INTO audit_lines (stream, seq, at, node, mailbox, action, result, line)
    SELECT p_stream, head_seq + u.i, at_ms, p_node, u.m, u.a, u.r, u.l
    FROM unnest(lines, p_mailboxes, p_actions, p_results) WITH ORDINALITY AS u(l, m, a, r, i);
  IF n > 0 THEN
    UPDATE audit_heads SET seq = head_seq + n, hash = prev WHERE stream = p_stream;
  END IF;
  hashes := hs;
  RETURN NEXT;
END $$;
