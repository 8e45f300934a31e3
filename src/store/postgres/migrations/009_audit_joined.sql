-- memfa_audit_append with the batch's line texts as one text, a line each (a line never holds a
-- newline: it is one line of a file trail too, src/audit/entry.ts), and the hashes of the lines
-- answered only when asked for. node-postgres sends a text[] parameter by quoting and escaping
-- every element in JavaScript and parses a text[] answer a character at a time: for a batch of
-- fast-path allows, whose callers wait for nothing, that was 7 µs of the daemon's CPU per line
-- (measured: 11.5 against 4.5 µs a line over batches of 400), a fifth of such a login's cost at
-- 100,000 mailboxes, where nearly every login is the first of its window and writes its line.
CREATE FUNCTION memfa_audit_append_joined(p_stream text, p_node text, p_fields text, p_mailboxes text[], p_actions text[], p_results text[], p_hashes boolean)
RETURNS TABLE (first_seq bigint, time_iso text, first_prev text, hashes text[])
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY SELECT a.first_seq, a.time_iso, a.first_prev, CASE WHEN p_hashes THEN a.hashes END
    FROM memfa_audit_append(p_stream, p_node, string_to_array(p_fields, E'\n'), p_mailboxes, p_actions, p_results) AS a;
END $$;
