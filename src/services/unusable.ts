// The answer when no provider can give a mailbox its second factor: a configuration error
// (PROVIDER_UNUSABLE, exit 78), which retrying does not mend, saying what is missing and where.
import { candidateText, problemText, type ProviderCandidate } from '../core/provider-choice.js';
import { MemfaError } from '../protocol/errors.js';

/** A candidate as codes.ts knows it (no role or source) or as the choice made it. */
export type UnusableCandidate = Pick<ProviderCandidate, 'provider' | 'problem'> & Partial<Pick<ProviderCandidate, 'role' | 'source'>>;

function hintFor(address: string, candidates: UnusableCandidate[]): string {
  const fixable = candidates.find((c) => c.problem === 'no-destination' || c.problem === 'no-gateway');
  if (fixable?.problem === 'no-destination') {
    return fixable.provider === 'sms'
      ? `give it a phone number (memfa mailbox set ${address} --phone +E164) or a provider it can use`
      : `give it an alternate address (memfa mailbox set ${address} --alt-email ADDRESS) or a provider it can use`;
  }
  if (fixable?.problem === 'no-gateway') {
    const gateway = fixable.provider === 'sms' ? 'smpp' : 'smtp';
    return `configure ${gateway} (man 5 memfa.conf) and restart the daemon, or disable the provider (memfa providers disable ${fixable.provider})`;
  }
  return 'enable a provider for it (memfa providers list)';
}

export function providerUnusable(address: string, candidates: UnusableCandidate[]): MemfaError {
  const said = candidates.map((c) => (c.role !== undefined && c.source !== undefined ? candidateText(c as ProviderCandidate) : `${c.provider} ${problemText(c)}`));
  return new MemfaError('PROVIDER_UNUSABLE', `no provider can give ${address} a second factor: ${said.join('; ')}`, {
    data: { reason: 'provider-unusable', providers: candidates.map((c) => ({ provider: c.provider, ...(c.role === undefined ? {} : { role: c.role }), ...(c.source === undefined ? {} : { source: c.source }), problem: c.problem })) },
    hint: hintFor(address, candidates),
  });
}
