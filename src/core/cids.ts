import { randomBytes } from 'node:crypto';

/** Random bits in the per-node part of a cid: unguessable, and unique without a counter. */
const RANDOM_BYTES = 15;
/** 120 bits take at most 24 base-36 digits; padded so every cid has the same shape. */
const RANDOM_DIGITS = 24;

/**
 * Connection ids: `<node-id>-<random>`, the random part 120 bits as 24 base-36 digits (lower
 * case, no "-"). The node id prefix routes pushes aimed at a cid to its node. The rest is random, not
 * a boot tag and a sequence: a cid is not a secret, but it names a connection to the server
 * API (PushData cids, DisconnectClient), so one must not be derivable from another
 * (issue 9, defect 11). Random ids are also unique across restarts of a node that keeps its
 * --node-id. One source per node, shared by every transport that adds sessions.
 */
export class CidSource {
  constructor(private readonly nodeId: string) {}

  next(): string {
    return `${this.nodeId}-${BigInt(`0x${randomBytes(RANDOM_BYTES).toString('hex')}`).toString(36).padStart(RANDOM_DIGITS, '0')}`;
  }
}
