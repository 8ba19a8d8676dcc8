/**
 * Wire formats, checked against the Python implementations themselves (Debian's jupyter_client
 * Session and jupyter_server's zmqhandlers): HMAC signing and ZMQ multipart, the legacy binary
 * websocket frame, the v1 subprotocol frame, and the connection-file schema.
 */
import { execFileSync } from 'node:child_process';
import {
  decodeWsFrame,
  deserializeBinaryMessage,
  deserializeMsgFromWsV1,
  deserializeRaw,
  encodeLegacy,
  encodeMessage,
  encodeV1,
  parseConnectionInfo,
  serializeBinaryMessage,
  serializeMsgToWsV1,
  serializeRaw,
  Signer,
  WireError,
  type MessageHeader,
} from '../../src/kernels/channels';
import { SYSTEM_PYTHON } from './helpers';

/** Runs Python (Debian's) with a JSON value on stdin; returns its stdout. */
function py(script: string, input: unknown): Buffer {
  return execFileSync(SYSTEM_PYTHON, ['-c', script], { input: JSON.stringify(input) });
}

const header: MessageHeader = {
  msg_id: 'a1',
  msg_type: 'comm_msg',
  username: 'u',
  session: 's1',
  date: '2024-05-01T10:00:00.000000Z',
  version: '5.3',
};

describe('ZMQ multipart and HMAC', () => {
  const key = 'f00d-cafe';

  test('signature equals jupyter_client Session.sign; jupyter_client accepts our multipart', () => {
    const raw = encodeMessage({
      header,
      parent_header: {},
      metadata: { m: 1 },
      content: { data: 'é✓' },
      buffers: [Buffer.from([0, 1, 2])],
    });
    const frames = serializeRaw({ ...raw, identities: [Buffer.from('peer')] }, new Signer(key));
    const out = py(
      `
import sys, json
from jupyter_client.session import Session
frames = [bytes.fromhex(h) for h in json.load(sys.stdin)]
s = Session(key=b'${key}')
idents, rest = s.feed_identities(frames)
msg = s.deserialize(rest)  # raises on a bad signature
print(json.dumps({"idents": [i.decode() for i in idents], "sig": s.sign(rest[1:5]).decode(),
  "content": msg["content"], "buffers": [bytes(b).hex() for b in msg["buffers"]]}))`,
      frames.map((f) => f.toString('hex')),
    );
    const parsed = JSON.parse(out.toString());
    expect(parsed.idents).toEqual(['peer']);
    expect(parsed.sig).toBe(frames[2]!.toString('latin1'));
    expect(parsed.content).toEqual({ data: 'é✓' });
    expect(parsed.buffers).toEqual(['000102']);
  });

  test('reads what jupyter_client Session.serialize produces', () => {
    const out = py(
      `
import sys, json
from jupyter_client.session import Session
s = Session(key=b'${key}', username='py')
msg = s.msg('execute_request', {'code': '1+1'})
frames = s.serialize(msg, ident=[b'id1']) + [b'xyz']  # Session.send appends buffers unsigned
print(json.dumps([bytes(f).hex() for f in frames]))`,
      null,
    );
    const frames = (JSON.parse(out.toString()) as string[]).map((h) => Buffer.from(h, 'hex'));
    const raw = deserializeRaw(frames, new Signer(key));
    expect(raw.identities.map(String)).toEqual(['id1']);
    expect(JSON.parse(raw.content.toString())).toEqual({ code: '1+1' });
    expect(raw.buffers.map(String)).toEqual(['xyz']);
  });

  test('rejects a bad signature, a wrong key and a tampered part', () => {
    const raw = encodeMessage({ header, parent_header: {}, metadata: {}, content: { a: 1 } });
    const frames = serializeRaw(raw, new Signer(key));
    const expectReject = (f: Buffer[], k = key) => {
      try {
        deserializeRaw(f, new Signer(k));
        throw new Error('accepted');
      } catch (err) {
        expect(err).toBeInstanceOf(WireError);
        expect((err as WireError).reason).toBe('bad-signature');
        expect((err as Error).message).not.toContain(k);
      }
    };
    expectReject(frames, 'other-key');
    const tampered = [...frames];
    tampered[5] = Buffer.from('{"a":2}');
    expectReject(tampered);
    const badSig = [...frames];
    badSig[1] = Buffer.from('0'.repeat(64));
    expectReject(badSig);
    const shortSig = [...frames];
    shortSig[1] = Buffer.from('abc');
    expectReject(shortSig);
    expect(() => deserializeRaw(frames.slice(1), new Signer(key))).toThrow(/no-delimiter/);
    expect(() => deserializeRaw(frames.slice(0, 4), new Signer(key))).toThrow(/too-few-frames/);
  });

  test('an empty key neither signs nor checks (as jupyter_client)', () => {
    const frames = serializeRaw(
      encodeMessage({ header, parent_header: {}, metadata: {}, content: {} }),
      new Signer(''),
    );
    expect(frames[1]!.length).toBe(0);
    expect(() => deserializeRaw(frames, new Signer(''))).not.toThrow();
  });
});

describe('websocket frames, byte-identical to jupyter_server', () => {
  const ZMQH =
    'from jupyter_server.base.zmqhandlers import serialize_binary_message, deserialize_binary_message, serialize_msg_to_ws_v1, deserialize_msg_from_ws_v1';

  test('serialize_binary_message: same bytes as Python for the same JSON', () => {
    const msg = { header, parent_header: {}, metadata: {}, content: { x: [1, 2] }, channel: 'shell' };
    const buffers = [Buffer.from('hello'), Buffer.alloc(0), Buffer.from([255, 0, 7])];
    const ours = serializeBinaryMessage({ ...msg, buffers });
    // Python's json.dumps spacing differs from JSON.stringify, so compare on the JSON part we pass in.
    const theirs = py(
      `
import sys, json
${ZMQH}
from types import SimpleNamespace
from jupyter_server.base import zmqhandlers
zmqhandlers.json = SimpleNamespace(dumps=lambda m, default=None: json.dumps(m, separators=(',', ':'), ensure_ascii=False))
v = json.load(sys.stdin)
msg = v['msg']; msg['buffers'] = [bytes.fromhex(h) for h in v['buffers']]
sys.stdout.buffer.write(serialize_binary_message(msg))`,
      { msg, buffers: buffers.map((b) => b.toString('hex')) },
    );
    expect(ours.equals(theirs)).toBe(true);
    const back = deserializeBinaryMessage(ours);
    expect(back.buffers.map((b) => b.toString('hex'))).toEqual(buffers.map((b) => b.toString('hex')));
    expect(back.content).toEqual({ x: [1, 2] });
  });

  test('deserialize_binary_message in Python reads our outbound binary frame', () => {
    const raw = encodeMessage({
      header,
      parent_header: { msg_id: 'p' },
      metadata: {},
      content: { data: {} },
      buffers: [Buffer.from('abc')],
    });
    const frame = encodeLegacy('iopub', raw, header);
    expect(frame.binary).toBe(true);
    const out = py(
      `
import sys, json
${ZMQH}
m = deserialize_binary_message(bytes.fromhex(json.load(sys.stdin)))
print(json.dumps({"channel": m["channel"], "msg_type": m["msg_type"], "msg_id": m["msg_id"], "parent": m["parent_header"], "buffers": [bytes(b).decode() for b in m["buffers"]], "has_buffers_key": "buffers" in m}))`,
      frame.data.toString('hex'),
    );
    expect(JSON.parse(out.toString())).toEqual({
      channel: 'iopub',
      msg_type: 'comm_msg',
      msg_id: 'a1',
      parent: { msg_id: 'p' },
      buffers: ['abc'],
      has_buffers_key: true,
    });
  });

  test('legacy text frame has the keys jupyter_server writes', () => {
    const raw = encodeMessage({ header, parent_header: {}, metadata: {}, content: { text: 'x' } });
    const frame = encodeLegacy('shell', raw, header);
    expect(frame.binary).toBe(false);
    expect(JSON.parse(frame.data.toString())).toEqual({
      header,
      msg_id: 'a1',
      msg_type: 'comm_msg',
      parent_header: {},
      metadata: {},
      content: { text: 'x' },
      buffers: [],
      channel: 'shell',
    });
  });

  test('v1 subprotocol: same bytes as serialize_msg_to_ws_v1, and we read Python frames', () => {
    const parts = [
      Buffer.from('{"h":1}'),
      Buffer.from('{}'),
      Buffer.from('{}'),
      Buffer.from('{"c":2}'),
      Buffer.from([1, 2, 3]),
    ];
    const ours = serializeMsgToWsV1('shell', parts);
    const theirs = py(
      `
import sys, json
${ZMQH}
sys.stdout.buffer.write(serialize_msg_to_ws_v1([bytes.fromhex(h) for h in json.load(sys.stdin)], 'shell'))`,
      parts.map((p) => p.toString('hex')),
    );
    expect(ours.equals(theirs)).toBe(true);
    const back = deserializeMsgFromWsV1(theirs);
    expect(back.channel).toBe('shell');
    expect(back.parts.map((p) => p.toString('hex'))).toEqual(parts.map((p) => p.toString('hex')));
    const raw = encodeMessage({ header, parent_header: {}, metadata: {}, content: {} });
    expect(deserializeMsgFromWsV1(encodeV1('iopub', raw).data).parts[0]!.equals(raw.header)).toBe(true);
  });

  test('decodeWsFrame: text, binary and v1 client frames; malformed ones throw', () => {
    const msg = { header, parent_header: {}, metadata: {}, content: { code: '1' }, channel: 'control' };
    const text = decodeWsFrame(Buffer.from(JSON.stringify(msg)), false, 'legacy');
    expect(text.channel).toBe('control');
    expect(JSON.parse(text.raw.content.toString())).toEqual({ code: '1' });
    const bin = decodeWsFrame(
      serializeBinaryMessage({ ...msg, buffers: [Buffer.from('b')] }),
      true,
      'legacy',
    );
    expect(bin.raw.buffers.map(String)).toEqual(['b']);
    const v1 = decodeWsFrame(
      serializeMsgToWsV1('stdin', [
        Buffer.from(JSON.stringify(header)),
        Buffer.from('{}'),
        Buffer.from('{}'),
        Buffer.from('{}'),
      ]),
      true,
      'v1',
    );
    expect(v1.channel).toBe('stdin');
    expect(v1.header.msg_id).toBe('a1');
    expect(() => decodeWsFrame(Buffer.from('not json'), false, 'legacy')).toThrow();
    expect(() => decodeWsFrame(Buffer.from('{"header": 3}'), false, 'legacy')).toThrow(/header/);
    expect(() => decodeWsFrame(Buffer.from([0, 0, 0, 9, 0, 0]), true, 'legacy')).toThrow();
    expect(() => decodeWsFrame(Buffer.from('{}'), false, 'v1')).toThrow(/text frame/);
  });
});

describe('connection file', () => {
  const file = {
    ip: '127.0.0.1',
    transport: 'tcp',
    shell_port: 1,
    iopub_port: 2,
    stdin_port: 3,
    control_port: 4,
    hb_port: 5,
    key: 'k',
    signature_scheme: 'hmac-sha256',
    kernel_name: 'python3',
  };

  test('parses a jupyter_client connection file (JSON text or object), dropping unknown fields', () => {
    expect(parseConnectionInfo(JSON.stringify({ ...file, extra: 1 }))).toEqual(file);
    const { transport: _t, signature_scheme: _s, kernel_name: _k, ...minimal } = file;
    expect(parseConnectionInfo(minimal)).toEqual({
      ...minimal,
      transport: 'tcp',
      signature_scheme: 'hmac-sha256',
      kernel_name: '',
    });
  });

  test('refuses bad ports and other signature schemes, naming the field', () => {
    expect(() => parseConnectionInfo({ ...file, shell_port: 70000 })).toThrow(/shell_port/);
    expect(() => parseConnectionInfo({ ...file, signature_scheme: 'hmac-md5' })).toThrow(/signature_scheme/);
    expect(() => parseConnectionInfo({ ...file, key: undefined })).toThrow(/key/);
  });
});
