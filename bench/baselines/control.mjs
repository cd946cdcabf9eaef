// The HTTP control surface both baselines share, so the harness drives them identically:
// POST /push {topic, uid?, data(base64)} and GET /stats (process.memoryUsage() after global.gc()).
// `push(room, bytes)` delivers; a private push's room is `uid/topic`. Other paths are left to `passThrough`.
const readBody = (req) =>
  new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

export function serveControl(http, { push, connections, passThrough = () => false }) {
  http.on('request', async (req, res) => {
    if (passThrough(req)) return;
    if (req.method === 'POST' && req.url === '/push') {
      const body = JSON.parse(await readBody(req));
      const room = body.uid ? `${body.uid}/${body.topic ?? ''}` : body.topic;
      await push(room, Buffer.from(body.data ?? '', 'base64'));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    if (req.method === 'GET' && req.url === '/stats') {
      globalThis.gc?.();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...process.memoryUsage(), connections: connections() }));
      return;
    }
    res.writeHead(404).end();
  });
}

export function listen(http, port) {
  http.listen(Number(port), '127.0.0.1', () => {
    process.send?.({ listening: http.address().port });
  });
  process.on('disconnect', () => process.exit(0));
}
