// Rough ingress figure: PushData calls/s over gRPC unary to one node, N in flight, to a topic with no
// subscribers. Usage: node bench/quick-ingress.mjs <host:grpcPort> [total=20000] [inflight=128]
import { credentials } from '@grpc/grpc-js';
const { PushServiceClient } = await import(new URL('../dist/gen/pushwire/v1/push.js', import.meta.url));
const [addr, total = 20000, conc = 128] = [process.argv[2], Number(process.argv[3] ?? 20000), Number(process.argv[4] ?? 128)];
const c = new PushServiceClient(addr, credentials.createInsecure());
let sent = 0, done = 0; const t0 = Date.now();
await new Promise((resolve) => { const pump = () => { while (sent - done < conc && sent < total) { sent++; c.pushData({ uid: '', topic: 'x', data: Buffer.from('hello') }, (e) => { if (e) throw e; done++; if (done === total) resolve(); else pump(); }); } }; pump(); });
console.log(JSON.stringify({ pushesPerSec: Math.round(total / ((Date.now() - t0) / 1000)) }));
process.exit(0);
