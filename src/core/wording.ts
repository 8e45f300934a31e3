// Counts in sentences for people: "1 mailbox", "2 mailboxes". Used by the messages the daemon
// composes and by the command's human output alike.

/** The form of a word or phrase that agrees with `n`. */
export function agree(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}

/** `n` followed by the form of the noun that agrees with it. */
export function count(n: number, one: string, many: string): string {
  return `${n} ${agree(n, one, many)}`;
}
