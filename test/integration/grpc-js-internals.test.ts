import { createRequire } from 'node:module';
import { connect, type IncomingHttpHeaders } from 'node:http2';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { describe, expect, it } from 'vitest';
import { takeStreamsFrom } from '../../src/ingress/grpc/grpc-js-streams.js';

/**
 * The gRPC fast path relies on grpc-js internals (src/ingress/grpc/grpc-js-streams.ts) and mirrors
 * its answers (grpc-fast-calls.ts, checked call by call in grpc-fast-path.test.ts). These tests
 * fail first when grpc-js changes: re-check both files against the new grpc-js, then move the pin.
 */

const pkg = createRequire(import.meta.url)('@grpc/grpc-js/package.json') as { version: string };

function call(port: number, path: string): Promise<{ headers: IncomingHttpHeaders; trailers: IncomingHttpHeaders | undefined }> {
  const session = connect(`http://127.0.0.1:${port}`);
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    stream.on('response', (h) => (headers = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('error', reject);
    stream.resume();
    stream.on('close', () => {
      session.close();
      resolve({ headers, trailers });
    });
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

describe('grpc-js internals the gRPC fast path relies on', () => {
  it(`is @grpc/grpc-js 1.14 (installed: ${pkg.version})`, () => {
    expect(pkg.version, 'grpc-js changed: re-check src/ingress/grpc/grpc-js-streams.ts and grpc-fast-calls.ts, then update this pin').toMatch(/^1\.14\./);
  });

  it('refuses a server that is not bound (no http2 servers yet)', () => {
    expect(() => takeStreamsFrom(new Server(), () => false)).toThrow(/--grpc-fast-path false/);
  });

  it("takes the streams it wants from a bound server's http2 server, and grpc-js keeps the rest", async () => {
    const server = new Server();
    new HealthImplementation({ '': 'SERVING' }).addToServer(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    try {
      const seen: string[] = [];
      takeStreamsFrom(server, (stream, headers) => {
        seen.push(String(headers[':path']));
        if (headers[':path'] !== '/taken/Method') return false;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-status': '0', 'grpc-message': 'taken' }, { endStream: true });
        return true;
      });
      expect((await call(port, '/taken/Method')).headers['grpc-message']).toBe('taken');
      const health = await call(port, '/grpc.health.v1.Health/Check');
      expect(health.headers['grpc-accept-encoding']).toBe('identity,deflate,gzip');
      expect(health.trailers?.['grpc-status']).toBe('0');
      expect(seen).toEqual(['/taken/Method', '/grpc.health.v1.Health/Check']);
    } finally {
      server.forceShutdown();
    }
  });

  it("counts a taken stream as open for grpc-js's idle timeout (grpc.max_connection_idle_ms)", async () => {
    const server = new Server({ 'grpc.max_connection_idle_ms': 300 });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const session = connect(`http://127.0.0.1:${port}`);
    try {
      let goaway = 0;
      session.on('goaway', () => goaway++);
      session.on('error', () => {});
      takeStreamsFrom(server, (stream) => {
        stream.on('error', () => {});
        stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto' });
        return true;
      });
      const stream = session.request({ ':method': 'POST', ':path': '/held/Open', 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => {});
      await new Promise((r) => stream.once('response', r));
      await new Promise((r) => setTimeout(r, 1000));
      expect(goaway, 'the session was closed as idle while a taken stream was open').toBe(0);
      stream.close();
      await new Promise((r) => setTimeout(r, 1200));
      expect(goaway, 'idle once the stream closed').toBeGreaterThan(0);
    } finally {
      session.destroy();
      server.forceShutdown();
    }
  });
});
