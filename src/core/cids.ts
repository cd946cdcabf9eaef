/**
 * Connection ids: `<node-id>-<boot>-<seq>`, boot and seq in base 36. The node id prefix routes
 * pushes aimed at a cid to its node; the boot tag keeps ids unique across restarts of a node
 * that keeps its --node-id. One source per node, shared by every transport that adds sessions.
 */
export class CidSource {
  private readonly bootTag = Date.now().toString(36);
  private seq = 0;

  constructor(private readonly nodeId: string) {}

  next(): string {
    return `${this.nodeId}-${this.bootTag}-${(++this.seq).toString(36)}`;
  }
}
