import { WebSocket } from 'ws';
import { ClientFrame, Command, ServerFrame, type ServerMessage } from '../../gen/pushwire/v1/client.js';

export type V1Format = 'json' | 'proto';

/** A received v1 message, normalised: JSON as parsed; protobuf via ServerMessage.toJSON plus numbers. */
export type V1Message = Record<string, any>;

/**
 * A real protocol v1 WebSocket client (pushwire.v1.json or pushwire.v1.proto) that records every
 * message. Protobuf messages are turned into the JSON mapping's shape (offsets as numbers, data
 * as a Buffer in `bytes`) so tests assert one way for both formats.
 */
export class V1Client {
  readonly messages: V1Message[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private cursor = 0;
  private waiters: Array<() => void> = [];
  private ids = 0;
  /** Text of the raw frames (JSON) or their byte length (proto), for frame-level assertions. */
  readonly frames: Array<{ binary: boolean; data: Buffer }> = [];

  private constructor(
    readonly ws: WebSocket,
    readonly format: V1Format,
  ) {
    ws.on('message', (data: Buffer, binary: boolean) => {
      this.frames.push({ binary, data });
      if (format === 'json') {
        for (const line of data.toString('utf8').split('\n')) if (line.trim() !== '') this.messages.push(JSON.parse(line) as V1Message);
      } else {
        for (const m of ServerFrame.decode(data).messages) this.messages.push(fromProto(m));
      }
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

  /** Opens the socket with the format's subprotocol (no connect command yet). */
  static async open(url: string, format: V1Format = 'json'): Promise<V1Client> {
    const ws = new WebSocket(url, [`pushwire.v1.${format}`]);
    const c = new V1Client(ws, format);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
    return c;
  }

  /** Opens and sends connect; resolves with the connect reply. */
  static async connect(url: string, format: V1Format = 'json', token = ''): Promise<V1Client> {
    const c = await V1Client.open(url, format);
    const r = await c.command({ connect: { token } });
    if (r.error) throw new Error(`connect failed: ${JSON.stringify(r.error)}`);
    return c;
  }

  /** Sends commands in one frame (JSON lines or one ClientFrame). */
  sendCommands(commands: Array<Record<string, any>>): void {
    if (this.format === 'json') this.ws.send(commands.map((c) => JSON.stringify(c)).join('\n'));
    else this.ws.send(ClientFrame.encode({ commands: commands.map(toProto) }).finish());
  }

  /** Sends one command with a fresh id and resolves with its reply. */
  async command(body: Record<string, any>): Promise<V1Message> {
    const id = ++this.ids;
    this.sendCommands([{ id, ...body }]);
    return this.next((m) => m.id === id);
  }

  async subscribe(channel: string, extra: Record<string, any> = {}): Promise<V1Message> {
    const r = await this.command({ subscribe: { channel, ...extra } });
    if (r.error) throw new Error(`subscribe failed: ${JSON.stringify(r.error)}`);
    return r.subscribe as V1Message;
  }

  /** Waits for the next message (after the previous match) satisfying `pred`. */
  async next(pred: (m: V1Message) => boolean = () => true, timeoutMs = 10_000): Promise<V1Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = this.cursor; i < this.messages.length; i++) {
        if (pred(this.messages[i]!)) {
          this.cursor = i + 1;
          return this.messages[i]!;
        }
      }
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error('connection closed while waiting');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting; got ${JSON.stringify(this.messages.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Publications received as pushes so far, on `channel`. */
  pubs(channel?: string): V1Message[] {
    return this.messages.filter((m) => m.pub && (channel === undefined || m.pub.channel === channel)).map((m) => m.pub as V1Message);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await this.closed;
  }
}

/** The payload of a JSON-mapped publication as text (data re-serialised, text, or base64 decoded). */
export function payloadText(p: V1Message): string {
  if (p.bytes !== undefined) return (p.bytes as Buffer).toString('utf8');
  if (p.text !== undefined) return p.text as string;
  if (p.b64 !== undefined) return Buffer.from(p.b64 as string, 'base64').toString('utf8');
  if (p.data !== undefined) return JSON.stringify(p.data);
  return '';
}

function toProto(c: Record<string, any>): Command {
  const cmd: any = { id: c.id ?? 0 };
  for (const [k, v] of Object.entries(c)) {
    if (k === 'id') continue;
    const body: any = { ...v };
    if (body.since) body.since = { offset: String(body.since.offset ?? 0), epoch: body.since.epoch ?? '' };
    if (k === 'request' && body.data !== undefined && !(body.data instanceof Uint8Array)) body.data = Buffer.from(JSON.stringify(body.data));
    cmd[k] = body;
  }
  return Command.fromPartial(cmd);
}

/** A protobuf ServerMessage in the JSON mapping's shape (offsets as numbers, payload bytes in `bytes`). */
function fromProto(m: ServerMessage): V1Message {
  const out: V1Message = {};
  if (m.id) out.id = m.id;
  const pub = (p: any): V1Message => ({ ...p, offset: Number(p.offset), time: Number(p.time), bytes: Buffer.from(p.data) });
  for (const [k, v] of Object.entries(m)) {
    if (k === 'id' || v === undefined) continue;
    if (k === 'pub') out.pub = pub(v);
    else if (k === 'subscribe' || k === 'history') out[k] = { ...(v as any), offset: Number((v as any).offset), publications: (v as any).publications.map(pub) };
    else if (k === 'reply') out.reply = { id: (v as any).id, bytes: Buffer.from((v as any).data) };
    else out[k] = v;
  }
  return out;
}
