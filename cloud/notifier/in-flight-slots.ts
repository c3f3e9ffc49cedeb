/**
 * The slots of a notifier: one per event it holds (read and not finished). The reading loops and reclaiming take
 * slots before they read, so together they never hold more than the cap; a loop that finds none waits its turn.
 */

/** Free slots, handed to waiting loops first come first served. */
export class InFlightSlots {
  /** Slots taken by reads under way (not yet counted by `used`). */
  private reserved = 0;
  private waiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly max: number,
    /** The events held now (in flight). */
    private readonly used: () => number,
  ) {}

  /** Slots neither held nor taken. */
  get free(): number {
    return this.max - this.used() - this.reserved;
  }

  /** Waits for a turn (behind earlier waiters) with at least one free slot, then takes up to `most`; 0 once closed. */
  async take(most: number): Promise<number> {
    if (this.closed) return 0;
    if (this.waiters.length === 0 && this.free > 0) return this.takeFree(most);
    await new Promise<void>((wake) => this.waiters.push(wake));
    if (!this.closed) return 1 + this.takeFree(most - 1); // wake() handed over one slot
    this.give(1);
    return 0;
  }

  /** Takes up to `most` of the free slots at once, without waiting; returns how many. */
  takeFree(most: number): number {
    const count = Math.max(0, Math.min(most, this.free));
    this.reserved += count;
    return count;
  }

  /** Gives back taken slots (their reads ended: what they read is counted by `used` now). */
  give(count: number): void {
    this.reserved -= count;
    this.wake();
  }

  /** Hands free slots to the waiting loops, one each, oldest first; call it when an event is finished. */
  wake(): void {
    while (this.waiters.length > 0 && (this.free > 0 || this.closed)) {
      this.reserved++;
      this.waiters.shift()!();
    }
  }

  /** Ends every wait (the notifier stops). */
  close(): void {
    this.closed = true;
    this.wake();
  }
}
