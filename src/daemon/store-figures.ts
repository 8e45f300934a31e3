// The store's figures for the metrics (memfa_store_*), read through the state ports. The file
// store answers from memory at every scrape; a database is asked at most once per
// STORE_FIGURES_MAX_AGE_MS (counting a million rows is not free), and while it cannot be asked the
// last figures stand. The sizes of the snapshot and journal exist for the file store only: 0 for a
// database.
import type { StoreFigures } from '../metrics/registry.js';
import type { MailboxStore, SettingsStore, StoreFacts } from '../services/store-ports.js';
import type { Logger } from './logger.js';

export const STORE_FIGURES_MAX_AGE_MS = 30_000;

export function storeFigures(state: Pick<MailboxStore, 'countMailboxes'> & Pick<SettingsStore, 'listDomains'>, facts: StoreFacts, log: Logger): () => Promise<StoreFigures> {
  let last: StoreFigures = { mailboxes: 0, domains: 0, snapshotBytes: 0, journalBytes: 0 };
  let at = -Infinity;
  const maxAge = facts.backend === 'file' ? 0 : STORE_FIGURES_MAX_AGE_MS;
  return async () => {
    const now = Date.now();
    if (now - at < maxAge && now >= at) return last;
    try {
      const [mailboxes, domains] = await Promise.all([state.countMailboxes(), state.listDomains()]);
      last = { mailboxes, domains: domains.length, ...(facts.fileSizes?.() ?? { snapshotBytes: 0, journalBytes: 0 }) };
      at = now;
    } catch (err) {
      log.debug('store-figures-unread', { error: (err as Error).message });
    }
    return last;
  };
}
