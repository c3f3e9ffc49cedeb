/**
 * Credentials that push and decide on jobs. The one that pushed a gated job may not approve it, nor may the person
 * behind it: the chat account that asked, or the account that a token was last handed to in chat.
 */
import type { AgentRow } from '../store/agents';
import type { UserRow } from '../store/users';

/** A credential, and the chat account of the person holding it when that is known. */
export interface Credential {
  /** `identity:<id>` (a chat account), `user-token:<hash prefix>`, `agent:<id>`, or `cli`. */
  id: string;
  /**
   * The identity row of the person behind it; null for a token an admin's CLI made (handed to nobody in chat);
   * UNKNOWN_HOLDER for a token handed out before holders were recorded.
   */
  identityId: number | null;
}

/** The holder of a token from before holders were recorded: it could be anyone, so it decides nothing. */
export const UNKNOWN_HOLDER = 0;

/** A chat or mail account, by its identity row. */
export function identityCredential(identityId: number): Credential {
  return { id: `identity:${identityId}`, identityId };
}

/** A user's current token (a rotated token is another credential), held by whoever it was last handed to. */
export function userTokenCredential(user: Pick<UserRow, 'tokenHash' | 'tokenIssuedTo'>): Credential {
  return { id: `user-token:${user.tokenHash.slice(0, 16)}`, identityId: user.tokenIssuedTo };
}

/** An agent's token, held by whoever it was last handed to. */
export function agentCredential(agent: Pick<AgentRow, 'id' | 'tokenIssuedTo'>): Credential {
  return { id: `agent:${agent.id}`, identityId: agent.tokenIssuedTo };
}

/** An admin's command line. */
export const CLI_CREDENTIAL: Credential = { id: 'cli', identityId: null };

/** True when the person behind a credential cannot be known (a token older than the record of holders). */
export function holderUnknown(credential: Credential): boolean {
  return credential.identityId === UNKNOWN_HOLDER;
}

/** True when two credentials are the same, or are held by the same known person. */
export function sameHolder(a: Credential, b: Credential): boolean {
  return a.id === b.id || (a.identityId !== null && a.identityId === b.identityId);
}
