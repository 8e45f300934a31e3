-- Security notices of a mailbox (core/notices.ts MailboxNotices): those waiting to be sent and the
-- recent ones the per-kind bound counts, as one document on the mailbox's row, so that a notice
-- is written under the same row lock, in the same transaction, as the event it reports. Null:
-- none (most mailboxes).
ALTER TABLE mailboxes ADD COLUMN notices json;
CREATE INDEX mailboxes_with_notices ON mailboxes (address) WHERE notices IS NOT NULL;
