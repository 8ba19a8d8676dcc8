/**
 * A session parked for a reconnect keeps its messages within both bounds: a message count and a byte
 * count (the per-kernel budget), dropping the oldest first; the next websocket of the session gets the rest.
 */
import type { WebSocket } from 'ws';
import { Attachment, SessionRouter, type Outbound } from '../../src/kernels/channels/session-router';

function message(n: number, bytes: number): Outbound {
  const header = { msg_id: `m${n}`, msg_type: 'stream', session: 's', username: 'u', date: '', version: '5.3' };
  const raw = { identities: [], header: Buffer.from(JSON.stringify(header)), parentHeader: Buffer.from('{"session":"s"}'), metadata: Buffer.from('{}'), content: Buffer.from(JSON.stringify({ text: 'x'.repeat(bytes) })), buffers: [] };
  return { channel: 'iopub', raw, header };
}

function fakeSocket(): { ws: WebSocket; sent: string[] } {
  const sent: string[] = [];
  const ws = { readyState: 1, send: (data: string) => sent.push(data) } as unknown as WebSocket;
  return { ws, sent };
}

test('a parked session drops its oldest messages beyond maxBufferedBytes', () => {
  const router = new SessionRouter({ graceMs: 60_000, maxBuffered: 1000, maxBufferedBytes: 3000 });
  const first = new Attachment(fakeSocket().ws, 'legacy', 'sess-1');
  router.add(first);
  router.remove(first);
  for (let i = 0; i < 5; i++) expect(router.toSession('sess-1', message(i, 1000))).toBe(true);
  const next = fakeSocket();
  router.add(new Attachment(next.ws, 'legacy', 'sess-1'));
  // Each message is a little over 1000 bytes: two fit in 3000, the three oldest were dropped.
  expect(next.sent.map((d) => (JSON.parse(d) as { header: { msg_id: string } }).header.msg_id)).toEqual(['m3', 'm4']);
  router.clear();
});

test('without a byte bound, the message count alone limits a parked session', () => {
  const router = new SessionRouter({ graceMs: 60_000, maxBuffered: 3 });
  const first = new Attachment(fakeSocket().ws, 'legacy', 'sess-2');
  router.add(first);
  router.remove(first);
  for (let i = 0; i < 5; i++) router.toSession('sess-2', message(i, 1000));
  const next = fakeSocket();
  router.add(new Attachment(next.ws, 'legacy', 'sess-2'));
  expect(next.sent).toHaveLength(3);
  router.clear();
});
