-- The key id of every sealed secret (v1.<kid>.<iv>.<tag>.<ciphertext>), indexed, so that a
-- daemon's start check (admin-state.ts sealedSecretPerKey: one secret per key id, opened with the
-- key file) walks the few key ids from index to index instead of reading and sorting every
-- mailbox: at a million mailboxes that read was most of a start.
CREATE INDEX mailboxes_totp_kid ON mailboxes (split_part(totp_sealed, '.', 2), address) WHERE totp_sealed IS NOT NULL;
CREATE INDEX mailboxes_pending_kid ON mailboxes (split_part(pending_sealed, '.', 2), address) WHERE pending_sealed IS NOT NULL;
