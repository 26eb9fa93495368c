/**
 * A hybrid logical clock: timestamps are nanoseconds since the Unix epoch, never
 * go backwards within a process, and move past every timestamp the process has
 * received, so causally later messages always carry larger timestamps across the
 * dataflow even when machines' clocks disagree slightly.
 */
export class HybridClock {
  private last = 0n;
  // Wall time at start-up plus a monotonic offset: ns resolution without wall-clock jumps.
  private readonly epochNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

  /** A fresh timestamp, strictly greater than every earlier one. */
  now(): bigint {
    const physical = this.epochNs + process.hrtime.bigint();
    this.last = physical > this.last ? physical : this.last + 1n;
    return this.last;
  }

  /** Accounts for a timestamp received from another process. */
  observe(remote: bigint): void {
    if (remote > this.last) this.last = remote;
  }
}
