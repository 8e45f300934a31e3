-- What a daemon may cache (store/postgres/cache.ts): the global and domain settings, the named
-- documents, and a mailbox's read-mostly part (its settings, destinations, whether it has an
-- active secret, its remembered locations). Every change of those is announced on channel
-- memfa_cache by the writing transaction itself, through these triggers: the notice goes out when
-- that transaction commits (and never if it rolls back), whichever daemon or tool wrote it, and
-- PostgreSQL sends one notice per distinct payload per transaction. Payloads: 'g' (the global
-- settings), 'd:<domain>', 'k:<meta key>', 'm:<address>'. Counters, steps, codes and tokens are
-- never cached, so the statements that change only those (every login's check-then-act) announce
-- nothing.

CREATE FUNCTION memfa_announce() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
  -- One statement per table: a field is looked up only in the rows that have it.
  IF TG_TABLE_NAME = 'global_settings' THEN PERFORM pg_notify('memfa_cache', 'g');
  ELSIF TG_TABLE_NAME = 'domains' THEN PERFORM pg_notify('memfa_cache', 'd:' || r.domain);
  ELSIF TG_TABLE_NAME = 'meta' THEN PERFORM pg_notify('memfa_cache', 'k:' || r.key);
  ELSE PERFORM pg_notify('memfa_cache', 'm:' || r.address);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER announce_made AFTER INSERT OR DELETE ON mailboxes FOR EACH ROW EXECUTE FUNCTION memfa_announce();
-- json has no equality: compared as text (a rewrite of the same document is no change).
CREATE TRIGGER announce_changed AFTER UPDATE ON mailboxes FOR EACH ROW
  WHEN (OLD.settings::text IS DISTINCT FROM NEW.settings::text OR OLD.user_settings::text IS DISTINCT FROM NEW.user_settings::text
        OR OLD.phone IS DISTINCT FROM NEW.phone OR OLD.alt_email IS DISTINCT FROM NEW.alt_email
        OR (OLD.totp_sealed IS NULL) <> (NEW.totp_sealed IS NULL))
  EXECUTE FUNCTION memfa_announce();
CREATE TRIGGER announce_made AFTER INSERT OR DELETE ON remembered_ips FOR EACH ROW EXECUTE FUNCTION memfa_announce();
CREATE TRIGGER announce_changed AFTER UPDATE ON remembered_ips FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION memfa_announce();
CREATE TRIGGER announce_made AFTER INSERT OR DELETE ON remembered_countries FOR EACH ROW EXECUTE FUNCTION memfa_announce();
CREATE TRIGGER announce_changed AFTER UPDATE ON remembered_countries FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION memfa_announce();
CREATE TRIGGER announce AFTER INSERT OR UPDATE OR DELETE ON domains FOR EACH ROW EXECUTE FUNCTION memfa_announce();
CREATE TRIGGER announce AFTER INSERT OR UPDATE OR DELETE ON global_settings FOR EACH ROW EXECUTE FUNCTION memfa_announce();
CREATE TRIGGER announce AFTER INSERT OR UPDATE OR DELETE ON meta FOR EACH ROW EXECUTE FUNCTION memfa_announce();

-- The census of locks (store/postgres/census.ts) counts the mailboxes that have failures: these.
CREATE INDEX mailboxes_failing ON mailboxes (address) WHERE known_consecutive IS NOT NULL OR elsewhere_consecutive IS NOT NULL;
