// Result shapes of the mail-protocol side: app passwords, the login check of a mail-protocol
// login (login.check) and its dry run (explain --protocol). results.ts re-exports them.
import type { MailboxView } from './results.js';
import type { AppProtocol } from './vocabulary.js';

/** An app password as app-password.list shows it: never the password or its hash. */
export interface AppPasswordView {
  id: string;
  name: string;
  protocols: AppProtocol[];
  /** CIDR networks it may be used from; empty: any. */
  networks: string[];
  createdAt: number;
  /** Epoch ms; null: never expires. */
  expiresAt: number | null;
  expired: boolean;
  lastUsed: { at: number; ip: string; country: string | null } | null;
  uses: number;
}

/** app-password.add, self.app-password.add: the password itself, shown this once. */
export interface AppPasswordAdded extends AppPasswordView {
  address: string;
  password: string;
}

export interface AppPasswordList {
  address: string;
  /** appPasswords.maxPerMailbox. */
  max: number;
  appPasswords: AppPasswordView[];
}

export interface AppPasswordRevoked {
  address: string;
  revoked: { id: string; name: string }[];
  /** App passwords the mailbox still has. */
  left: number;
}

export type LoginCheckOutcome = 'allow' | 'continue' | 'deny';

/** login.check: what a mail server does with a mail-protocol login (see memfa(1), LOGIN CHECK). */
export interface LoginCheckResult {
  result: LoginCheckOutcome;
  reason: string;
  user: string;
  ip: string;
  country: string | null;
  protocol: AppProtocol;
  /** deny: one line the mail server may show the client. */
  message?: string;
  /** The id of the app password that matched (allow, or a deny for its protocol, network or expiry). */
  appPasswordId?: string;
  /** deny throttled: seconds until a login can succeed again. */
  retryAfter?: number;
}

/** explain with a protocol: what login.check would answer, and why. */
export interface ProtocolExplainResult {
  address: string;
  ip: string;
  country: string | null;
  protocol: AppProtocol;
  mailbox: MailboxView;
  /** For a password that is not one of the mailbox's app passwords. */
  decision: { result: LoginCheckOutcome; reason: string; message?: string; matched?: string };
  /** The app passwords that would be accepted here, and those that would not, with why. */
  appPasswords: { id: string; name: string; accepted: boolean; refusal: string | null }[];
  steps: string[];
}
