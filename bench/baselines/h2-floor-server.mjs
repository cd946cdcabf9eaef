// The floor of a unary gRPC call on node:http2: a server that reads each stream's request to its end and answers
// what the gRPC fast path answers a PushData (grpc-js's headers, one 5-byte-prefixed message, OK trailers), with no
// decoding, auth or push. Started by bench/h2-floor.mjs; prints {"port":N} when listening.
import { createServer } from 'node:http2';

const HEADERS = { ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-accept-encoding': 'identity,deflate,gzip', 'grpc-encoding': 'identity' };
const ANSWER = Buffer.from([0, 0, 0, 0, 4, 0x0a, 0x02, 0x69, 0x64]); // PushDataResponse { messageId: "id" }
const server = createServer();
server.on('stream', (stream) => {
  stream.on('error', () => {});
  stream.on('data', () => {});
  stream.on('end', () => {
    if (stream.destroyed || stream.closed) return;
    stream.respond(HEADERS, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'OK' }));
    stream.end(ANSWER);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
