import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { metric } from './metrics.js';

export const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A pushwire node started through the real CLI (`node dist/src/cli.js serve`), on port 0. */
export class NodeProcess {
  readonly logs: LogLine[] = [];
  stderr = '';
  nodeId = '';
  ports = { ws: 0, http: 0, grpc: 0 };
  readonly exited: Promise<number | null>;

  private constructor(readonly proc: ChildProcess) {
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        this.logs.push(JSON.parse(line) as LogLine);
      } catch {
        this.logs.push({ level: 30, msg: line });
      }
    });
  }

  /** Spawns `pushwire serve` with ephemeral ports plus `args`; resolves once it logs its ports. */
  static async start(args: string[] = [], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<NodeProcess> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" (npm test does) first`);
    const proc = spawn(
      process.execPath,
      [CLI, 'serve', '--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
    );
    const node = new NodeProcess(proc);
    // Generous for a loaded machine, but below the 30 s hook timeout: a start that outlives its hook
    // would leave the node running with nobody to stop it (callers with longer hooks pass more).
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ready = node.logs.find((l) => l.msg === 'pushwire node listening');
      if (ready) {
        node.nodeId = ready.nodeId as string;
        node.ports = { ws: ready.wsPort as number, http: ready.httpPort as number, grpc: ready.grpcPort as number };
        return node;
      }
      if (proc.exitCode !== null) throw new Error(`node exited with ${proc.exitCode}: ${node.stderr}`);
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`node did not start: ${node.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.ports.ws}/ws`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.ports.http}`;
  }

  get grpcAddress(): string {
    return `127.0.0.1:${this.ports.grpc}`;
  }

  /** Value of a metric sample from /metrics, summed over label sets matching `labels`. */
  metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return metric(this.httpUrl, name, labels);
  }

  /** Sends `signal` and waits for the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }
}

/** Runs the CLI to completion (for --help, bad options); returns exit code and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
