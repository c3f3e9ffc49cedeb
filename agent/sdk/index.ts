/** The Skadi agent SDK: embed an agent in a Node service. */
export { Agent, type AgentOptions, type AgentLogger, type Job, type JobHandler } from './agent';
export { AgentClient, InvalidTokenError, ServerError, type JobPayload } from './client';
export { Backoff, type BackoffOptions } from './backoff';
export { splitWords, RefusedMessage } from '../words';
