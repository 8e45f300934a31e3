// What pg-gen.ts and its workers agree on: the addresses and TOTP keys of generated mailboxes.

/** The i-th address of a group, as store-gen.ts names them for the file store. */
export function addressOf(prefix: string, i: number): string {
  return `${prefix}${i}@d${i % 100}.bench.example`;
}

/**
 * The TOTP key of the n-th mailbox of the store: the run's random 20-byte seed with its last four
 * bytes replaced by n. Distinct per mailbox and unknown outside the run, which is all a benchmark
 * needs; cheap, so that the load client computes keys of the mailboxes it picks as it needs them.
 */
export function totpKey(seed: Buffer, n: number): Buffer {
  const key = Buffer.from(seed.subarray(0, 20));
  key.writeUInt32BE(n >>> 0, 16);
  return key;
}
