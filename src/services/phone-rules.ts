// The phone rules of core/phone.ts, loaded on the first phone number written rather than at start:
// libphonenumber costs a few MB of resident memory and tens of milliseconds to load (more on a
// busy machine), which the daemon's start and its logins never need.
type PhoneRules = typeof import('../core/phone.js');

let loading: Promise<PhoneRules> | undefined;

export function phoneRules(): Promise<PhoneRules> {
  loading ??= import('../core/phone.js').catch((err: unknown) => {
    // A failed load (a broken install) is tried again by the next write, not remembered.
    loading = undefined;
    throw err;
  });
  return loading;
}
