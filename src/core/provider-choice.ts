// Which provider can give a mailbox its second factor: the one its settings name, else their
// fallback. A provider the platform disabled cannot; nor can sms or email without a gateway, or
// without the mailbox's phone number or alternate address. Decided before anything is sent, so
// that a configuration error is answered as one (PROVIDER_UNUSABLE) and not as a failed send to
// retry. Pure: what is enabled and which gateways exist are passed in.
import { CODE_PROVIDERS, isMember, type ProviderProblem } from '../protocol/vocabulary.js';
import type { ProviderCandidate, ProviderChoice } from '../protocol/wire-types.js';
import type { CodeProvider, EffectiveSettings, ProviderName } from './model.js';

// The lists and shapes are the protocol's (mailbox show and explain carry the choice as it is).
export { PROVIDER_PROBLEMS, type ProviderProblem } from '../protocol/vocabulary.js';
export type { ProviderCandidate, ProviderChoice } from '../protocol/wire-types.js';

export interface ProviderFacts {
  enabled(provider: ProviderName): boolean;
  hasGateway(provider: CodeProvider): boolean;
}

export function isCodeProvider(provider: string): provider is CodeProvider {
  return isMember(CODE_PROVIDERS, provider);
}

/** Where a code of `provider` goes for the mailbox, or null when it has none. */
export function destinationOf(rec: { phone: string | null; altEmail: string | null }, provider: CodeProvider): string | null {
  return provider === 'sms' ? rec.phone : rec.altEmail;
}

function problemOf(provider: ProviderName, rec: { phone: string | null; altEmail: string | null }, facts: ProviderFacts): ProviderProblem | null {
  if (!facts.enabled(provider)) return 'disabled';
  if (!isCodeProvider(provider)) return null;
  if (!facts.hasGateway(provider)) return 'no-gateway';
  return destinationOf(rec, provider) === null ? 'no-destination' : null;
}

export function chooseProvider(eff: EffectiveSettings, rec: { phone: string | null; altEmail: string | null }, facts: ProviderFacts): ProviderChoice {
  const candidates: ProviderCandidate[] = [{ provider: eff.provider, role: 'provider', source: eff.sources.provider, problem: problemOf(eff.provider, rec, facts) }];
  const fb = eff.fallbackProvider;
  if (fb !== 'none' && fb !== eff.provider) candidates.push({ provider: fb, role: 'fallback', source: eff.sources.fallbackProvider, problem: problemOf(fb, rec, facts) });
  const used = candidates.find((c) => c.problem === null);
  if (used !== undefined) return { outcome: 'usable', provider: used.provider, role: used.role, source: used.source, candidates };
  const outcome = candidates.every((c) => c.problem === 'disabled') ? 'disabled' : 'unusable';
  return { outcome, provider: null, role: null, source: null, candidates };
}

/**
 * The settings verify decides with: the fallback in the provider's place when it is the one used
 * (it then has no fallback of its own); unchanged otherwise.
 */
export function settingsFor(eff: EffectiveSettings, choice: ProviderChoice): EffectiveSettings {
  if (choice.role !== 'fallback' || choice.provider === null) return eff;
  return { ...eff, provider: choice.provider, fallbackProvider: 'none', sources: { ...eff.sources, provider: choice.source ?? eff.sources.fallbackProvider } };
}

/** The code providers to send through, in order: the one used, then a usable fallback. */
export function sendOrder(choice: ProviderChoice): CodeProvider[] {
  const from = choice.candidates.findIndex((c) => c.problem === null);
  if (from === -1) return [];
  return choice.candidates
    .slice(from)
    .filter((c) => c.problem === null)
    .map((c) => c.provider)
    .filter(isCodeProvider);
}

/** "is disabled", "has no phone number for this mailbox", ...: what keeps a candidate from use. */
export function problemText(c: { provider: ProviderName; problem: ProviderProblem | null }): string {
  switch (c.problem) {
    case null:
      return 'can be used';
    case 'disabled':
      return 'is disabled';
    case 'no-gateway':
      return `has no gateway (${c.provider === 'sms' ? 'smpp' : 'smtp'} is not configured)`;
    case 'no-destination':
      return `has no ${c.provider === 'sms' ? 'phone number' : 'alternate address'} for this mailbox`;
  }
}

/** "email from domain is disabled" */
export function candidateText(c: ProviderCandidate): string {
  return `${c.role === 'fallback' ? 'fallback ' : ''}${c.provider} from ${c.source} ${problemText(c)}`;
}

/**
 * The choice in words, as explain and mailbox show print it:
 *   email (from domain)
 *   sms (fallback, from global; email from domain is disabled)
 *   none usable: email from domain has no alternate address for this mailbox; fallback sms from global is disabled
 */
export function describeChoice(choice: ProviderChoice): string {
  const unusable = choice.candidates.filter((c) => c.problem !== null);
  if (choice.provider === null) return `none usable: ${unusable.map(candidateText).join('; ')}${choice.candidates.length === 1 ? ', and no fallback is set' : ''}`;
  if (choice.role === 'fallback') {
    const configured = choice.candidates[0]!;
    return `${choice.provider} (fallback, from ${choice.source}; ${configured.provider} from ${configured.source} ${problemText(configured)})`;
  }
  const fallback = choice.candidates[1];
  return `${choice.provider} (from ${choice.source})${fallback?.problem ? `; ${candidateText(fallback)}` : ''}`;
}
