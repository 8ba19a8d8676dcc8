/**
 * A request is authenticated before its body is parsed (issue 11): without a valid token the answer is
 * 401 while the body is still arriving (it is never read), on the gateway and on the hub routes. With a
 * valid token the body is read as before, and a JSON body without Content-Type (Enterprise Gateway's
 * client) is still understood.
 */
import http from 'node:http';
import request from 'supertest';
import { ADMIN, HUB, startEdgeService, type EdgeService } from './tokens-service';

jest.setTimeout(60_000);

let edge: EdgeService;
beforeAll(async () => {
  edge = await startEdgeService('before-body');
});
afterAll(() => edge?.close());

interface Answer {
  status: number;
  body: string;
}

/** Starts a POST whose body never ends; resolves with the answer, or 'pending' if none comes in `ms`. */
function postUnfinished(urlPath: string, headers: Record<string, string>, ms: number): Promise<{ answer: Answer | 'pending'; req: http.ClientRequest }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: edge.port, method: 'POST', path: urlPath, headers: { 'Content-Type': 'application/json', ...headers } });
    const timer = setTimeout(() => resolve({ answer: 'pending', req }), ms);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ answer: { status: res.statusCode ?? 0, body }, req });
      });
    });
    req.on('error', () => undefined); // the server may close the connection on an unread body
    // 64 KiB of a JSON string that is never closed, sent chunked: the body has no end.
    req.write(`{"name": "${'x'.repeat(64 * 1024)}`);
  });
}

test('auth before body: an unauthenticated POST is refused (401) without its body being read', async () => {
  for (const [p, headers] of [
    ['/api/kernels', {}],
    ['/api/kernels', { Authorization: 'token sg_not-a-real-token' }],
    ['/api/users/alice/server', {}],
    ['/api/admin/experiments', { Authorization: 'token wrong-token-0123456789' }],
  ] as const) {
    const { answer, req } = await postUnfinished(p, headers, 5000);
    req.destroy();
    expect([p, answer === 'pending' ? 'pending' : answer.status]).toEqual([p, 401]);
  }
});

test('auth before body: an authenticated POST waits for its body, then is parsed as before', async () => {
  const { answer, req } = await postUnfinished('/api/users/alice/server', { Authorization: `token ${HUB}` }, 700);
  expect(answer).toBe('pending');
  req.destroy();
  const huge = await request(edge.service.app!).post('/api/kernels').set({ Authorization: `token ${ADMIN}`, 'Content-Type': 'application/json' }).send(`{"name":"${'x'.repeat(2 * 1024 * 1024)}"}`);
  expect(huge.status).toBe(413);
});

test('auth before body: a JSON body without Content-Type is parsed for an authenticated caller', async () => {
  const body = JSON.stringify({ name: 'no-such-kernelspec', env: { KERNEL_USERNAME: 'alice' } });
  const res = await new Promise<Answer>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: edge.port, method: 'POST', path: '/api/kernels', headers: { Authorization: `token ${ADMIN}`, 'Content-Length': Buffer.byteLength(body) } });
    req.on('response', (r) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (text += c));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
  // Parsed: the owner came from env.KERNEL_USERNAME and the name was looked up.
  expect(res.status).toBe(404);
  expect(JSON.parse(res.body).message).toBe('Kernel spec no-such-kernelspec not found');
});
