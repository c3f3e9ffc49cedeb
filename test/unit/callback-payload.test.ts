/** The callback body on fixed times: the original Skadi's time format (no trailing zeros), and which times are present. */
import { callbackPayload } from '../../cloud/notifier/deliver';
import type { JobStatusEvent } from '../../cloud/lifecycle/events';
import type { JobRow } from '../../cloud/store/jobs';

const job = {
  id: '01K0000000000000000000000A',
  userId: 7,
  agentId: 42,
  agentName: 'web1',
  message: 'date',
  source: 'delayed:web1',
  origin: null,
  callback: 'https://example.com/hook',
  status: 'succeeded',
  result: 'ok',
  reason: null,
  leaseUntil: null,
  createdAt: new Date('2022-11-06T14:47:50.120Z'),
  sentAt: new Date('2022-11-06T14:47:51.000Z'),
  finishedAt: new Date('2022-11-06T14:47:52.005Z'),
  updatedAt: new Date('2022-11-06T14:47:52.005Z'),
  requester: null,
  pushedBy: null,
  approval: null,
  waitUntil: null,
} satisfies JobRow;

const event = (status: JobStatusEvent['status'], at: string): JobStatusEvent => ({
  type: 'job:status',
  job_id: job.id,
  user_id: 7,
  agent_id: 42,
  agent: 'web1',
  status,
  result: status === 'succeeded' ? 'ok' : null,
  reason: null,
  at,
});

describe('callbackPayload', () => {
  it('a succeeded job: our fields and the original ones, times trimmed as Go prints them', () => {
    expect(callbackPayload(job, event('succeeded', '2022-11-06T14:47:52.005Z'))).toEqual({
      type: 'job:status',
      id: job.id,
      user_id: '7',
      agent_id: '42',
      agent: 'web1',
      message: 'date',
      source: 'delayed:web1',
      callback: 'https://example.com/hook',
      status: 'succeeded',
      result: 'ok',
      reason: '',
      created_at: '2022-11-06T14:47:50.12Z',
      sent_at: '2022-11-06T14:47:51Z',
      succeeded_at: '2022-11-06T14:47:52.005Z',
      at: '2022-11-06T14:47:52.005Z',
    });
  });

  it('leaves out the times a status change had not reached: none when queuing, only sent_at when sent', () => {
    const queuing = callbackPayload(job, event('queuing', '2022-11-06T14:47:50.120Z'));
    const sent = callbackPayload(job, event('sent', '2022-11-06T14:47:51.000Z'));
    const at = (body: Record<string, unknown>) => Object.keys(body).filter((k) => k.endsWith('_at') && k !== 'created_at');
    expect([at(queuing), at(sent)]).toEqual([[], ['sent_at']]);
    expect(at(callbackPayload({ ...job, sentAt: null }, event('expired', '2022-11-06T14:50:00.100Z')))).toEqual(['expired_at']);
  });
});
