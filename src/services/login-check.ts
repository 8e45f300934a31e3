// `login.check`: the question a mail server asks for a login that cannot answer a challenge
// (IMAP, POP3, SMTP AUTH, ManageSieve, CalDAV/CardDAV). It is answered from one read of the
// mailbox and its settings: it never sends a code, never counts a second-factor failure, never
// writes the store on the answer's path and never creates a mailbox record. The password is
// hashed only when it has the shape of an app password, and is never logged or audited.
import type { MemfaConfig } from '../config/types.js';
import { appPasswordRefusal, canonicalAppPassword, type AppProtocol } from '../core/app-passwords.js';
import { isRememberedIp, type RememberPolicy } from '../core/decide.js';
import type { AppPassword, EffectiveSettings, MailboxRecord } from '../core/model.js';
import { decideProtocolLogin, type ProtocolLoginDecision } from '../core/protocol-login.js';
import { ipInNetworks, normaliseAddress, normaliseIp } from '../core/validate.js';
import type { CountryLookup } from '../geo/country.js';
import type { LoginCheckResult, ProtocolExplainResult } from '../protocol/results.js';
import type { AppPasswords } from './app-passwords.js';
import { mailboxViewOf, rememberPolicy, viewSettings } from './context.js';
import { LoginThrottle } from './login-throttle.js';
import { logLoginThrottled } from './security-log.js';
import type { AuditSink, CallContext, Log } from './ports.js';
import { assertMailbox } from './scope.js';
import type { LoginReads, LoginView, WindowCounterStore } from './store-ports.js';

/** What login.check needs: one read of the mailbox, the failure windows of its throttle, the security log. */
export interface LoginCheckPorts {
  state: LoginReads & WindowCounterStore;
  config: MemfaConfig;
  clock: () => number;
  country: CountryLookup;
  audit: Pick<AuditSink, 'record' | 'recordAllow'>;
  log: Pick<Log, 'notice'>;
}

export interface LoginCheckInput {
  user: string;
  ip: string;
  protocol: AppProtocol;
  password: string;
}

const THROTTLED_MESSAGE = 'too many failed logins; try again later';
const inNetworks = (ip: string, cidrs: readonly string[]) => ipInNetworks(ip, cidrs) !== null;

interface Situation {
  address: string;
  ip: string;
  country: string | null;
  now: number;
  rec: MailboxRecord | undefined;
  eff: EffectiveSettings;
  /** The address is a fresh remembered one of the mailbox (the throttle spares it). */
  known: boolean;
  view: LoginView;
}

export class LoginCheck {
  private readonly throttle: LoginThrottle;
  private readonly remember: RememberPolicy;

  constructor(
    private readonly p: LoginCheckPorts,
    private readonly appPasswords: AppPasswords,
  ) {
    this.throttle = new LoginThrottle(p.config, p.state);
    this.remember = rememberPolicy(p.config);
  }

  /** One read: the mailbox and its settings. */
  private async situation(user: string, rawIp: string, param: 'user' | 'address'): Promise<Situation> {
    const address = normaliseAddress(user, param);
    const ip = normaliseIp(rawIp, 'ip');
    const now = this.p.clock();
    const view = await this.p.state.loginView(address);
    const rec = view.mailbox;
    const eff = viewSettings(this.p.config, view);
    return { address, ip, country: this.p.country(ip), now, rec, eff, known: rec !== undefined && isRememberedIp(rec.ips, ip, now, this.remember), view };
  }

  private decide(s: Situation, protocol: AppProtocol, matched: AppPassword | null): ProtocolLoginDecision {
    const settings = { challenge: s.eff.challenge, primaryPassword: s.eff.primaryPassword, countryRules: s.eff.countryRules, trustedNetwork: ipInNetworks(s.ip, s.eff.trustedNetworks) };
    const history = s.rec ?? { ips: [], countries: [] };
    const login = { protocol, ip: s.ip, country: s.country, now: s.now };
    const app = matched === null ? null : { name: matched.name, refusal: appPasswordRefusal(matched, login, inNetworks) };
    return decideProtocolLogin(settings, history, this.remember, login, app);
  }

  async check(input: LoginCheckInput, ctx: CallContext): Promise<LoginCheckResult> {
    const s = await this.situation(input.user, input.ip, 'user');
    const { address, ip, country, now } = s;
    const base = { user: address, ip, country, protocol: input.protocol };
    const entry = (result: string, reason: string, details?: Record<string, unknown>) => ({
      actor: ctx.actor,
      socket: ctx.socket,
      mailbox: address,
      action: 'login.check',
      result,
      reason,
      ip,
      country,
      ...(details === undefined ? {} : { details }),
    });

    const refused = await this.throttle.refusal(ip, address, s.known, now);
    if (refused !== null) {
      this.p.audit.record(entry('deny', 'throttled', { by: refused.by }));
      return { ...base, result: 'deny', reason: 'throttled', message: THROTTLED_MESSAGE, retryAfter: Math.max(1, Math.ceil((refused.until - now) / 1000)) };
    }

    // Only a password of the right shape is hashed: one HMAC for all the mailbox's app passwords.
    const canonical = canonicalAppPassword(input.password);
    let matched: AppPassword | null = null;
    if (canonical !== null && s.rec !== undefined && (await this.appPasswords.enabled())) {
      const i = this.appPasswords.match(s.rec, canonical);
      if (i !== -1) matched = s.rec.appPasswords[i]!;
    }
    const decision = this.decide(s, input.protocol, matched);
    // A wrong app password: one of that shape that matched none, or any password where only app
    // passwords are accepted. A primary password memfa lets through is not counted: the mail
    // server's passdb checks it, and memfa does not learn whether it was right.
    if (matched === null && (canonical !== null || decision.reason === 'app-password-required')) {
      for (const block of await this.throttle.fail(ip, address, now)) logLoginThrottled(this.p.log, { ip, mailbox: address, ...block });
    }

    const answer: LoginCheckResult = { ...base, result: decision.result, reason: decision.reason };
    if (decision.message !== undefined) answer.message = decision.message;
    if (matched !== null) answer.appPasswordId = matched.id;
    if (decision.result === 'allow' && matched !== null) this.appPasswords.usage.note(address, matched.id, { at: now, ip, country });
    // Allows and continues are counted per minute (audit/aggregate.ts), as verify's fast path is.
    if (decision.result === 'deny') this.p.audit.record(entry('deny', decision.reason, matched === null ? undefined : { appPassword: matched.id }));
    else this.p.audit.recordAllow(entry(decision.result, decision.reason));
    return answer;
  }

  /** `explain --protocol`: what login.check would answer from this address, and why. Changes nothing. */
  async explain(params: { address: string; ip: string; protocol: AppProtocol }, ctx: CallContext): Promise<ProtocolExplainResult> {
    const s = await this.situation(params.address, params.ip, 'address');
    assertMailbox(ctx, s.address);
    const { eff } = s;
    const steps: string[] = [];
    steps.push(`country of ${s.ip}: ${s.country ?? 'unknown'}`);
    steps.push(eff.countryRules.length === 0 ? 'country rules: none' : `country rules: ${eff.countryRules.map((r) => `${r.level} ${r.rule.mode} ${r.rule.countries.join(',')}`).join('; ')}`);
    steps.push(`trusted networks: ${eff.trustedNetworks.length === 0 ? 'none' : eff.trustedNetworks.join(', ')}`);
    steps.push(`challenge mode: ${eff.challenge} (from ${eff.sources.challenge}); primary password over mail protocols: ${eff.primaryPassword} (from ${eff.sources.primaryPassword})`);
    steps.push(s.known ? `${s.ip} is a remembered address of the mailbox (a second factor was passed from it)` : `${s.ip} is not a remembered address of the mailbox`);

    const enabled = await this.appPasswords.enabled();
    const appPasswords = (s.rec?.appPasswords ?? []).map((ap) => {
      const d = this.decide(s, params.protocol, ap);
      const refusal = !enabled ? 'app-passwords-disabled' : d.result === 'allow' ? null : d.reason;
      return { id: ap.id, name: ap.name, accepted: refusal === null, refusal };
    });
    if (!enabled) steps.push('app passwords are disabled on this platform (memfa providers): none is accepted');
    else if (appPasswords.length === 0) steps.push('app passwords: none');
    else steps.push(`app passwords: ${appPasswords.map((a) => `${a.name} (${a.id}) ${a.accepted ? 'accepted' : `refused: ${a.refusal}`}`).join('; ')}`);

    let decision: ProtocolExplainResult['decision'];
    const refused = await this.throttle.refusal(s.ip, s.address, s.known, s.now);
    if (refused !== null) {
      steps.push(`too many wrong app passwords recently (${refused.by === 'source' ? 'from this address' : 'for this mailbox'}): every login is refused until ${new Date(refused.until).toISOString()}`);
      decision = { result: 'deny', reason: 'throttled', message: THROTTLED_MESSAGE };
    } else {
      const d = this.decide(s, params.protocol, null);
      decision = { result: d.result, reason: d.reason, ...(d.message === undefined ? {} : { message: d.message }), ...(d.matched === undefined ? {} : { matched: d.matched }) };
    }
    steps.push(
      `any other password: ${decision.result} (${decision.reason})${decision.result === 'continue' ? ": the mail server's own passdb checks it" : ''}${decision.message === undefined ? '' : `; the client is told "${decision.message}"`}`,
    );
    return {
      address: s.address,
      ip: s.ip,
      country: s.country,
      protocol: params.protocol,
      mailbox: mailboxViewOf(this.p.config, s.view, s.address, s.now),
      decision,
      appPasswords,
      steps,
    };
  }
}
