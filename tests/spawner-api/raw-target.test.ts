/**
 * Raw bytes in the request target (src/spawner-api/raw-target): jupyter_server sends `?user=<name>`
 * unencoded, and Node's parser alone answers such a request with a bare 400. Through the raw-target
 * listener raw UTF-8 and spaces in targets are accepted (percent-encoded before Node parses them), on
 * keep-alive and pipelined connections and before websocket upgrades — while header and method parsing
 * stay exactly as strict as Node's.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { createRawTargetListener, RequestTargetRewriter, rewriteRequestLine, upgradedSocket } from '../../src/spawner-api/raw-target';

/** Feeds `input` in pieces of `size` bytes and returns everything the rewriter let through. */
function feedInPieces(input: Buffer, size: number): { out: Buffer; passingThrough: boolean } {
  const r = new RequestTargetRewriter();
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += size) parts.push(r.feed(input.subarray(i, i + size)));
  parts.push(r.flush());
  return { out: Buffer.concat(parts), passingThrough: r.passingThrough };
}

describe('the request-line rewriting', () => {
  test('raw UTF-8 and spaces in the target become %XX; method and version are untouched', () => {
    const line = (s: string) => rewriteRequestLine(Buffer.from(s, 'utf8')).toString('latin1');
    expect(line('GET /api/kernelspecs?user=zoë HTTP/1.1')).toBe('GET /api/kernelspecs?user=zo%C3%AB HTTP/1.1');
    expect(line('GET /api/kernelspecs?user=a b HTTP/1.1')).toBe('GET /api/kernelspecs?user=a%20b HTTP/1.1');
    expect(line("GET /api/kernelspecs?user=o'neil HTTP/1.1")).toBe("GET /api/kernelspecs?user=o'neil HTTP/1.1");
    expect(line('GET /x?u=a  b c HTTP/1.0')).toBe('GET /x?u=a%20%20b%20c HTTP/1.0');
    // Lines without the request-line shape are left for llhttp to refuse.
    expect(line('GET /x?u=ü')).toBe(Buffer.from('GET /x?u=ü').toString('latin1'));
    expect(line('GET /x?u=ü HTTP/9')).toBe(Buffer.from('GET /x?u=ü HTTP/9').toString('latin1'));
    expect(line('GÉT /x HTTP/1.1')).toBe(Buffer.from('GÉT /x HTTP/1.1').toString('latin1'));
  });

  const pipelined = Buffer.from(
    [
      'GET /a?user=zoë HTTP/1.1\r\nHost: x\r\n\r\n',
      // A body that looks like a request line with raw UTF-8: a body is never touched.
      'POST /b?user=a b HTTP/1.1\r\nHost: x\r\nContent-Length: 29\r\n\r\nGET /inside?x=é HTTP/1.1\r\n\r\n',
      'POST /c?user=ł HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nü é\r\n2\r\n\r\n\r\n0\r\nTrailer: ő\r\n\r\n',
      '\r\nGET /d?user=ß HTTP/1.1\r\nHost: x\r\n\r\n',
    ].join(''),
    'utf8',
  );
  const expected = Buffer.from(
    [
      'GET /a?user=zo%C3%AB HTTP/1.1\r\nHost: x\r\n\r\n',
      'POST /b?user=a%20b HTTP/1.1\r\nHost: x\r\nContent-Length: 29\r\n\r\nGET /inside?x=é HTTP/1.1\r\n\r\n',
      'POST /c?user=%C5%82 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nü é\r\n2\r\n\r\n\r\n0\r\nTrailer: ő\r\n\r\n',
      '\r\nGET /d?user=%C3%9F HTTP/1.1\r\nHost: x\r\n\r\n',
    ].join(''),
    'utf8',
  );

  test.each([1, 2, 3, 7, 64, 100_000])('pipelined requests with bodies, fed %i bytes at a time', (size) => {
    const { out, passingThrough } = feedInPieces(pipelined, size);
    expect(out.toString('latin1')).toBe(expected.toString('latin1'));
    expect(passingThrough).toBe(false);
  });

  test.each([
    ['an upgrade (the websocket frames that follow are not HTTP)', 'GET /ws?user=ü HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', 'GET /x?u=ü HTTP/1.1\r\n'],
    ['a CONNECT (a tunnel follows)', 'CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n', 'GET /x?u=ü HTTP/1.1\r\n'],
    ['Content-Length and Transfer-Encoding together', 'POST /a HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 'GET /x?u=ü HTTP/1.1\r\n'],
    ['two Content-Lengths', 'POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc', 'GET /x?u=ü HTTP/1.1\r\n'],
    ['a transfer coding other than chunked', 'POST /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'GET /x?u=ü HTTP/1.1\r\n'],
    ['an obs-fold', 'GET /a HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n', 'GET /x?u=ü HTTP/1.1\r\n'],
    ['a bare LF', 'GET /a HTTP/1.1\nHost: x\n\n', 'GET /x?u=ü HTTP/1.1\r\n'],
    ['a malformed chunk size', 'POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'GET /x?u=ü HTTP/1.1\r\n'],
  ])('after %s the rest of the connection passes through untouched', (_what, first, next) => {
    const input = Buffer.from(first + next, 'utf8');
    for (const size of [1, 5, input.length]) {
      const { out, passingThrough } = feedInPieces(input, size);
      expect(passingThrough).toBe(true);
      expect(out.subarray(out.length - Buffer.byteLength(next)).toString('utf8')).toBe(next);
    }
  });
});

describe('a real HTTP server behind the raw-target listener', () => {
  let server: http.Server;
  let listener: net.Server;
  let port: number;
  const seen: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        seen.push(req.url!);
        const user = new URL(req.url!, 'http://x').searchParams.get('user');
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ method: req.method, url: req.url, user, body, remote: req.socket.remoteAddress }));
      });
    });
    const wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req, socket, head) => {
      const accept = (s: typeof socket, h: Buffer) =>
        wss.handleUpgrade(req, s, h, (ws) => {
          ws.send(JSON.stringify({ url: req.url, detached: s instanceof net.Socket }));
          ws.on('message', (m, binary) => ws.send(m, { binary }));
        });
      if (!req.url!.includes('detach')) return accept(socket, head);
      // As spawngate's kernel channels do: answer after an asynchronous check, on the TCP socket itself.
      setTimeout(() => {
        const up = upgradedSocket(socket, head);
        accept(up.socket, up.head);
      }, 200);
    });
    listener = createRawTargetListener(server);
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
    port = (listener.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((r) => listener.close(() => r()));
  });

  /** Writes `bytes` on a fresh connection (half-closing it) and returns everything the server answered. */
  function exchange(bytes: Buffer | string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.end(bytes));
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('error', reject);
      s.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
  }

  const bodies = (answer: string) =>
    answer
      .split(/HTTP\/1\.1 /)
      .filter(Boolean)
      .map((r) => r.slice(0, 3) + ' ' + r.slice(r.indexOf('\r\n\r\n') + 4));

  test('Node alone refuses raw UTF-8 in the target (why the listener exists)', async () => {
    const bare = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => bare.listen(0, '127.0.0.1', () => r()));
    const answer = await new Promise<string>((resolve) => {
      const s = net.connect((bare.address() as AddressInfo).port, '127.0.0.1', () => s.end('GET /api/kernelspecs?user=zoë HTTP/1.1\r\nHost: x\r\n\r\n'));
      let out = '';
      s.on('data', (d) => (out += d));
      s.on('close', () => resolve(out));
    });
    await new Promise<void>((r) => bare.close(() => r()));
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  });

  test('raw UTF-8, spaces and apostrophes in ?user= arrive decoded', async () => {
    for (const name of ['zoë-łódź', 'ünïcode.user', 'a b', "o'neil", '张伟']) {
      const answer = await exchange(`GET /api/kernelspecs?user=${name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ user: name, remote: '127.0.0.1' });
    }
  });

  test('keep-alive and pipelined requests, bodies untouched, each answered in order', async () => {
    const answer = await exchange(
      'GET /1?user=zoë HTTP/1.1\r\nHost: x\r\n\r\n' +
        'POST /2?user=a b HTTP/1.1\r\nHost: x\r\nContent-Length: 29\r\n\r\nGET /inside?x=é HTTP/1.1\r\n\r\n' +
        'POST /3?user=ł HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nü é\r\n0\r\n\r\n' +
        'GET /4?user=ß HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    const parsed = bodies(answer).map((b) => [b.slice(0, 3), JSON.parse(b.slice(4))]);
    expect(parsed.map(([status, j]) => [status, j.url, j.user, j.body])).toEqual([
      ['200', '/1?user=zo%C3%AB', 'zoë', ''],
      ['200', '/2?user=a%20b', 'a b', 'GET /inside?x=é HTTP/1.1\r\n\r\n'],
      ['200', '/3?user=%C5%82', 'ł', 'ü é'],
      ['200', '/4?user=%C3%9F', 'ß', ''],
    ]);
  });

  test('headers and methods are parsed as strictly as before', async () => {
    const refusedByNode = [
      'GET /x?user=ü HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\n\r\n', // control character in a header value
      'GET /x?user=ü HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n', // space in a header name
      'GET /x?user=ü HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n', // obs-fold
      'POST /x?user=ü HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', // CL + TE
      'POST /x?user=ü HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', // conflicting lengths
      'G(T /x?user=ü HTTP/1.1\r\nHost: x\r\n\r\n', // not a method token
      'GET /x?user=ü HTTP/1.1\nHost: x\n\n', // bare LF
      'GET /x?user=a\tb HTTP/1.1\r\nHost: x\r\n\r\n', // a tab is a control character, left for Node to refuse
    ];
    for (const req of refusedByNode) expect([req, (await exchange(req)).slice(0, 12)]).toEqual([req, 'HTTP/1.1 400']);
    // A smuggling attempt after a refused request never reaches the application.
    const before = seen.length;
    await exchange('POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(seen.slice(before)).not.toContain('/smuggled');
  });

  test('websocket upgrade with raw UTF-8 in the target, then frames in both directions', async () => {
    // `ws` percent-encodes the URL itself, so the raw target is written by hand and the frames by a
    // client that takes over the socket afterwards.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/kernels/k/channels?user=${encodeURIComponent('zoë')}`);
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (m) => resolve(String(m)));
      ws.once('error', reject);
    });
    expect(JSON.parse(first)).toEqual({ url: '/api/kernels/k/channels?user=zo%C3%AB', detached: false });
    const payload = Buffer.from('GET /not-a-request?x=é HTTP/1.1\r\n\r\n', 'utf8');
    const echoed = await new Promise<Buffer>((resolve) => {
      ws.once('message', (m) => resolve(m as Buffer));
      ws.send(payload);
    });
    expect(echoed.equals(payload)).toBe(true);
    ws.close();

    // The raw form, as jupyter_server's websocket client would send it: the handshake by hand.
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () =>
        s.write(
          'GET /api/kernels/k/channels?user=a b ü HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        ),
      );
      let out = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        out = Buffer.concat([out, d]);
        const end = out.indexOf('\r\n\r\n');
        // The server's first frame follows the 101 response: a text frame with the URL it saw.
        if (end >= 0 && out.length > end + 4 + 2 && out.length >= end + 4 + 2 + out[end + 5]!) {
          s.destroy();
          resolve(out.toString('utf8'));
        }
      });
      s.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 101 /);
    expect(answer).toContain('{"url":"/api/kernels/k/channels?user=a%20b%20%C3%BC","detached":false}');
  });

  test('an upgrade handed the TCP socket itself keeps the bytes that arrived before the hand-over', async () => {
    /** A masked client text frame (RFC 6455 §5.2), written by hand so it can go out before the 101. */
    const frame = (text: string) => {
      const payload = Buffer.from(text);
      const mask = Buffer.from([1, 2, 3, 4]);
      return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))]);
    };
    const texts = await new Promise<string[]>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(
          'GET /detach?user=zoë HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        );
        // Arrives while the server is still deciding: held by the wrapper, then handed over as head.
        setTimeout(() => s.write(frame('early ü')), 50);
      });
      let out = Buffer.alloc(0);
      let wroteLater = false;
      const seen: string[] = [];
      s.on('data', (d: Buffer) => {
        out = Buffer.concat([out, d]);
        const end = out.indexOf('\r\n\r\n');
        if (end < 0) return;
        // Server frames are unmasked and short here: [0x81, len, ...payload].
        let at = end + 4;
        seen.length = 0;
        while (at + 2 <= out.length && at + 2 + out[at + 1]! <= out.length) {
          seen.push(out.subarray(at + 2, at + 2 + out[at + 1]!).toString('utf8'));
          at += 2 + out[at + 1]!;
        }
        if (seen.length >= 1 && !wroteLater) {
          wroteLater = true;
          s.write(frame('later'));
        }
        if (seen.length === 3) {
          s.destroy();
          resolve([...seen]);
        }
      });
      s.on('error', reject);
    });
    expect(texts).toEqual(['{"url":"/detach?user=zo%C3%AB","detached":true}', 'early ü', 'later']);
  });

  test('a request line never finished does not hold a connection forever', async () => {
    const { RawTargetSocket } = await import('../../src/spawner-api/raw-target');
    const local = net.createServer((socket) => server.emit('connection', new RawTargetSocket(socket, 300)));
    await new Promise<void>((r) => local.listen(0, '127.0.0.1', () => r()));
    const closedAfter = await new Promise<number>((resolve) => {
      const started = Date.now();
      const s = net.connect((local.address() as AddressInfo).port, '127.0.0.1', () => s.write('GET /slow?user=zo'));
      s.on('close', () => resolve(Date.now() - started));
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => local.close(() => r()));
    expect(closedAfter).toBeGreaterThanOrEqual(250);
    expect(closedAfter).toBeLessThan(30_000);
  });
});
