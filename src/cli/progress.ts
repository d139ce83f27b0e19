/** A progress bar on stderr for a terminal, or a line every few seconds for logs and CI. */
export class Progress {
  private lastLine = 0;

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number, total: number, extra = ''): void {
    const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
    if (this.stream.isTTY) {
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      this.stream.write(
        `\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% ${done}/${total} ${extra}   `,
      );
      return;
    }
    const now = Date.now();
    if (now - this.lastLine > 2000 || done === total) {
      this.lastLine = now;
      this.stream.write(`${this.label}: ${done}/${total} (${pct}%) ${extra}\n`);
    }
  }

  finish(): void {
    if (this.stream.isTTY) this.stream.write('\n');
  }
}
