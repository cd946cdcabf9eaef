let seq = 0;

/** A name no other test uses, so tests sharing a node cannot see each other's traffic. */
export const unique = (prefix: string): string => `${prefix}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;
