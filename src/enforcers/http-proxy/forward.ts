import { createServer, type Server } from 'node:http';
import type { CredentialProxy } from './proxy.js';

/**
 * The credential proxy as a forward proxy for plain `http://` URLs (`HTTP_PROXY=http://HOST:PORT`):
 * the request line carries the absolute URL, the phantom token rides where the credential goes.
 * `CONNECT` (HTTPS tunnelling) is refused: a tunnel cannot be judged or have its credential
 * swapped; HTTPS upstreams go through `/proxy/{credential}/…` on the gateway.
 *
 * @param maxBodyBytes largest request body; larger ones get 413 without being judged.
 * @returns the listening server (port 0 picks a free one).
 */
export function listenForward(proxy: CredentialProxy, host: string, port: number, maxBodyBytes: number): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (status: number, headers: Record<string, string>, body: Buffer) => {
      // the client may have gone while the request was judged or held
      if (res.destroyed || res.headersSent) return;
      res.writeHead(status, { ...headers, 'content-length': String(body.length) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const deny = (status: number, error: string) => send(status, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ verdict: 'deny', error })));
    if (!/^http:\/\//i.test(req.url ?? '')) {
      deny(400, 'send an absolute http:// URL (this is a forward proxy: set HTTP_PROXY to it)');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBodyBytes) tooLarge = true;
      else chunks.push(c);
    });
    req.on('end', () => {
      if (tooLarge) {
        deny(413, `the body is larger than ${maxBodyBytes} bytes`);
        return;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const abort = new AbortController();
      res.on('close', () => abort.abort());
      void proxy.handle({ method: req.method ?? 'GET', mode: 'forward', credential: null, target: req.url as string, headers, body: Buffer.concat(chunks), signal: abort.signal })
        .then((r) => send(r.status, r.headers, r.body));
    });
    req.on('error', () => res.destroy());
  });
  server.on('connect', (_req, socket) => {
    socket.end('HTTP/1.1 405 Method Not Allowed\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"verdict":"deny","error":"CONNECT is refused: a tunnel cannot be judged; use /proxy/{credential}/ on the gateway for https"}');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
