/** Input schemas of the HTTP routes. */
import { z } from 'zod';
import { parseDuration } from '../config';
import { MAX_AGENT_MESSAGE_CHARS, MAX_MESSAGE_CHARS } from '../cloud/lifecycle/job-text';

const callback = z
  .string()
  .max(2048)
  .refine((v) => v === '' || v === 'disable' || /^https?:\/\/[^\s]+$/.test(v), 'must be an http(s) URL, "disable", or empty')
  .optional();

/** "<agent> <job text>", capped before anything parses it. */
const agentMessage = z
  .string({ error: 'message is required (a string)' })
  .max(MAX_AGENT_MESSAGE_CHARS, `message is longer than ${MAX_MESSAGE_CHARS} characters`);

/** Body of running/succeed/fail reports. */
export const reportBody = z.object({ result: z.string().optional().default('') });

/** Body of /job/add and /agent/job/add. */
export const jobAddBody = z.object({ message: agentMessage, callback });

/** Body of POST /jobs/:id/deny (it may be empty). */
export const denyBody = z.object({ reason: z.string().max(200, 'the reason is at most 200 characters').optional().default('') });

/** Body of /agent/job/delayed; the delay is `duration` or the sum of minutes/hours/days. */
export const delayedBody = z
  .object({
    message: agentMessage,
    duration: z.string().max(64, 'duration is longer than 64 characters').optional(),
    minutes: z.number().int().min(0).max(527_040).optional(),
    hours: z.number().int().min(0).max(8784).optional(),
    days: z.number().int().min(0).max(366).optional(),
    callback,
    /** Another of the user's agents to run the job; the caller itself when absent. */
    agent: z.string().min(1, 'agent is empty').max(64, 'agent is longer than 64 characters').optional(),
  })
  .transform((body, ctx) => {
    let delayMs: number | null;
    if (body.duration) {
      delayMs = parseDuration(body.duration);
      if (delayMs === null) ctx.addIssue({ code: 'custom', path: ['duration'], message: 'is not a duration (e.g. 90s, 15m, 1h30m, 2d)' });
    } else {
      delayMs = ((body.days ?? 0) * 24 * 60 + (body.hours ?? 0) * 60 + (body.minutes ?? 0)) * 60_000;
    }
    return { message: body.message, callback: body.callback, agent: body.agent, delayMs: delayMs ?? 0 };
  });

/** Body of the message routes. */
export const messageBody = z.object({
  message: z
    .string({ error: 'message is required (a string)' })
    .min(1, 'message is empty')
    .max(4096, 'message is longer than 4096 characters'),
  source: z.string().max(64).optional(),
  color: z
    .string()
    .regex(/^#[0-9a-fA-F]{6}$/, 'must be a color like #336699')
    .optional(),
});

/** `?wait=N` seconds of the long polls, capped by the configuration. */
export function waitQuery(max: number) {
  return z.object({
    wait: z.coerce
      .number({ error: 'wait must be a number of seconds' })
      .int('wait must be a whole number of seconds')
      .min(0, 'wait must be 0 or more')
      .max(max, `wait must be at most ${max} seconds`)
      .optional()
      .default(0),
  });
}

/** `?next=1` on a final report: take the agent's next queued job in the same request. */
export const nextQuery = z.object({
  next: z.enum(['0', '1', 'true', 'false'], { error: 'next must be 1 or 0' }).optional(),
});

/** Message kinds of the message routes. */
export const MESSAGE_KINDS = ['info', 'warning', 'text', 'auto'] as const;
