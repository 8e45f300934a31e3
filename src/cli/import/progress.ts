// A progress bar on standard error, drawn only when it is a terminal (never into a pipe or a log),
// at most ten times a second, and wiped before anything else is printed.
const WIDTH = 30;
const EVERY_MS = 100;

export class Progress {
  private last = 0;
  private drawn = false;

  constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly enabled: boolean = stream.isTTY === true,
    private readonly now: () => number = Date.now,
  ) {}

  update(done: number): void {
    if (!this.enabled || this.total === 0) return;
    const t = this.now();
    if (done < this.total && t - this.last < EVERY_MS) return;
    this.last = t;
    const filled = Math.round((done / this.total) * WIDTH);
    this.stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${done}/${this.total}`);
    this.drawn = true;
  }

  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }
}
