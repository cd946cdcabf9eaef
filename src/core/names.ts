import { invalidArgument } from './errors.js';

/** Limits on the names clients and backends use; documented in docs/protocol.md. */
export const MAX_TOPIC_BYTES = 256;
export const MAX_UID_BYTES = 128;

// Control characters would make names ambiguous in logs and in bus channel names.
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Returns an error message for an invalid topic, or undefined when it is valid. */
export function topicProblem(topic: string): string | undefined {
  if (topic.length === 0) return 'topic must not be empty';
  if (Buffer.byteLength(topic) > MAX_TOPIC_BYTES) return `topic longer than ${MAX_TOPIC_BYTES} bytes`;
  if (CONTROL.test(topic)) return 'topic contains control characters';
  if (!topic.isWellFormed()) return 'topic is not valid Unicode (lone surrogate)';
  return undefined;
}

export function uidProblem(uid: string): string | undefined {
  if (uid.length === 0) return 'uid must not be empty';
  if (Buffer.byteLength(uid) > MAX_UID_BYTES) return `uid longer than ${MAX_UID_BYTES} bytes`;
  if (CONTROL.test(uid)) return 'uid contains control characters';
  if (!uid.isWellFormed()) return 'uid is not valid Unicode (lone surrogate)';
  return undefined;
}

/** Throws INVALID_ARGUMENT unless the optional name is empty or valid. */
export function checkOptionalName(kind: 'uid' | 'topic', value: string): void {
  if (value === '') return;
  const problem = kind === 'uid' ? uidProblem(value) : topicProblem(value);
  if (problem) throw invalidArgument(problem);
}
