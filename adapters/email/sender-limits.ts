/**
 * Limits per sender that keep a flood of mail from becoming a flood of answers: one refusal a day, and at most
 * `senderLimit` commands per window. Counted in Redis (the core's window counters), so every gateway node keeps one count.
 */
import { createHash } from 'node:crypto';
import type { AdapterServices, WindowCounter } from '../contract';

/** What to do with a sender's command mail: run it, tell them once that they are over the limit, or drop it silently. */
export type Admission = 'run' | 'notice' | 'drop';

const DAY_MS = 24 * 60 * 60 * 1000;

/** A short key for a counter: addresses may be long and hold any character. */
const keyOf = (text: string) => createHash('sha256').update(text.toLowerCase()).digest('hex').slice(0, 32);

/** The per-sender counters of the e-mail adapter. */
export class SenderLimits {
  private readonly refusals: WindowCounter;
  private readonly commands: WindowCounter;
  private readonly oversized: WindowCounter;

  constructor(
    services: AdapterServices,
    private readonly limit: number,
    windowMs: number,
  ) {
    this.refusals = services.counter('email-refusals', DAY_MS);
    this.commands = services.counter('email-commands', windowMs);
    this.oversized = services.counter('email-oversized', DAY_MS);
  }

  /** True for the first refused mail (by its de-duplication key) of a sender in a day. */
  async mayRefuse(sender: string, mailKey: string): Promise<boolean> {
    return (await this.refusals.hit(keyOf(sender), keyOf(mailKey))).count === 1;
  }

  /**
   * Counts a command mail of a sender once (two nodes reading the same mail count it once): `run` within the limit,
   * `notice` for the first mail past it, `drop` for the later ones and for a copy of an over-the-limit mail.
   */
  async admit(sender: string, mailKey: string): Promise<Admission> {
    const { count, repeated } = await this.commands.hit(keyOf(sender), keyOf(mailKey));
    if (count <= this.limit) return 'run';
    return count === this.limit + 1 && !repeated ? 'notice' : 'drop';
  }

  /** True the first time a mail (by its de-duplication key) is answered for being too big, whichever node reads it. */
  async firstOversizedAnswer(mailKey: string): Promise<boolean> {
    return !(await this.oversized.hit(keyOf(mailKey), 'answered')).repeated;
  }
}
