// Phone numbers that people give (mailbox set --phone, self set, provider test): parsed with
// libphonenumber's numbering plans, stored in E.164, and only if they can receive SMS, the one use
// memfa has for a phone. Pure.
//
// The full metadata ("max"), not "min" or "mobile": only it tells a landline from a number that
// does not exist, which is what a refusal must say. Loading the library costs memory and time that
// logins never need: services load this module on the first phone number written
// (services/phone-rules.ts), and delivery checks the stored E.164 form alone (normaliseE164).
import { parsePhoneNumberWithError, ParseError, type NumberType } from 'libphonenumber-js/max';
import { MemfaError } from '../protocol/errors.js';
import { normaliseE164 } from './validate.js';

function invalid(param: string, message: string): MemfaError {
  return new MemfaError('INVALID_PARAMS', `${param}: ${message}`, { data: { param } });
}

const MAX_INPUT = 64;
/** What a number may be written with: '+', digits, and the separators people use ('(0)' included). */
const WRITTEN = /^\+[0-9 \-.()]+$/;

/**
 * Types that can receive an SMS. FIXED_LINE_OR_MOBILE: plans that do not tell them apart (the
 * North American +1, among others), where a number's type cannot be known from its digits.
 */
const SMS_TYPES: ReadonlySet<NumberType> = new Set<NumberType>(['MOBILE', 'FIXED_LINE_OR_MOBILE']);

const TYPE_NAMES: Readonly<Partial<Record<NonNullable<NumberType>, string>>> = {
  FIXED_LINE: 'a landline (fixed-line) number',
  TOLL_FREE: 'a toll-free number',
  PREMIUM_RATE: 'a premium-rate number',
  SHARED_COST: 'a shared-cost number',
  VOIP: 'a VoIP number',
  PERSONAL_NUMBER: 'a personal (forwarding) number',
  PAGER: 'a pager number',
  UAN: 'a company (UAN) number',
  VOICEMAIL: 'a voicemail access number',
};

const PARSE_PROBLEMS: Readonly<Record<string, string>> = {
  INVALID_COUNTRY: "has no known country calling code after the '+'",
  TOO_SHORT: 'is too short for a phone number',
  TOO_LONG: 'is too long for a phone number',
  NOT_A_NUMBER: 'is not a phone number',
};

/**
 * The E.164 form ('+' and up to 15 digits) of a number, given in international form with any
 * spaces, dashes, dots and parentheses, that is valid in its country's numbering plan and can
 * receive SMS: a mobile, or any number where the plan does not tell mobiles apart. A national
 * trunk prefix written after the country code ('+44 (0)20 ...') is dropped, as the plan says.
 */
export function normalisePhone(s: unknown, param = 'phone'): string {
  if (typeof s !== 'string') throw invalid(param, `expected a string, got ${s === null ? 'null' : typeof s}`);
  const raw = s.trim();
  if (raw === '') throw invalid(param, 'must not be empty');
  if (raw.length > MAX_INPUT) throw invalid(param, `longer than ${MAX_INPUT} characters`);
  if (!raw.startsWith('+')) {
    const intl = /^00[1-9]/.test(raw) ? `; write + for the leading 00 (+${raw.slice(2)})` : '';
    throw invalid(param, `'${raw}' must be in international form, starting with '+' and the country code${intl}`);
  }
  if (!WRITTEN.test(raw)) throw invalid(param, `'${raw}' may contain only digits, spaces, dashes, dots and parentheses after the '+'`);
  let parsed;
  try {
    parsed = parsePhoneNumberWithError(raw);
  } catch (err) {
    if (!(err instanceof ParseError)) throw err;
    throw invalid(param, `'${raw}' ${PARSE_PROBLEMS[err.message] ?? 'is not a phone number'}`);
  }
  const where = parsed.country ?? `+${parsed.countryCallingCode}`;
  if (!parsed.isValid()) throw invalid(param, `'${raw}' is not a valid number in the numbering plan of ${where}`);
  const type = parsed.getType();
  if (!SMS_TYPES.has(type)) {
    const what = (type && TYPE_NAMES[type]) ?? 'a number of a kind its numbering plan does not name';
    throw invalid(param, `'${raw}' is ${what} in ${where}, which cannot receive SMS codes; give a mobile number`);
  }
  // The stored form is the one delivery checks: always true of what libphonenumber formats.
  return normaliseE164(parsed.number, param);
}
