// The phone rules of core/phone.ts, loaded on the first phone number written rather than at start:
// libphonenumber adds about 10 MB and 50 ms to the daemon, which logins never need.
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
