import { WebSocket } from 'ws';

export interface Frame {
  text: string;
  binary: boolean;
  data: Buffer;
  /** Parsed JSON when the frame is JSON, else undefined. */
  json: Record<string, unknown> | undefined;
}

/**
 * A real WebSocket client that records every frame. `next()` waits for the next frame
 * matching a predicate; `request()` sends a frame with an `id` and waits for the reply
 * echoing it.
 */
export class TestClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The first frame's cid. */
  cid = '';
  private cursor = 0;
  private waiters: Array<() => void> = [];
  private ids = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, binary: boolean) => {
      const text = data.toString('utf8');
      let json: Record<string, unknown> | undefined;
      try {
        const v: unknown = JSON.parse(text);
        if (typeof v === 'object' && v !== null) json = v as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      this.frames.push({ text, binary, data, json });
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        for (const w of this.waiters.splice(0)) w();
      }),
    );
    ws.on('error', () => {});
  }

  /** Connects and waits for the 20000 frame. */
  static async connect(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<TestClient> {
    const ws = new WebSocket(url, options);
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
    const hello = await client.next((f) => f.json?.code === 20000);
    client.cid = String(hello.json!.cid);
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Sends `frame` with a fresh id and resolves with the reply carrying that id. */
  async request(frame: Record<string, unknown>, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const id = `r${++this.ids}`;
    this.send({ ...frame, id });
    return (await this.next((f) => f.json?.id === id, timeoutMs)).json!;
  }

  subscribe = (topic: string) => this.request({ code: 1, topic });
  unsubscribe = (topic: string) => this.request({ code: 2, topic });
  login = (token: string) => this.request({ code: 3, data: token });
  logout = () => this.request({ code: 4 });
  subscribePrivate = (topic: string) => this.request({ code: 5, topic });
  unsubscribePrivate = (topic: string) => this.request({ code: 6, topic });

  /** The next unread frame matching `match` (frames before it that don't match are skipped). */
  async next(match: (f: Frame) => boolean = () => true, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.frames.length) {
        const f = this.frames[this.cursor++]!;
        if (match(f)) return f;
      }
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error('connection closed while waiting for a frame');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; got ${this.frames.map((f) => f.text).join(' | ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Frames received that are not protocol replies (i.e. deliveries), as text. */
  deliveries(): string[] {
    return this.frames.filter((f) => !(f.json && typeof f.json.code === 'number' && f.json.code >= 20000 && f.json.code < 40000)).map((f) => f.text);
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    return this.closed;
  }
}
