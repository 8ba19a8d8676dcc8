/**
 * Enterprise Gateway's response-address handshake, server side: one TCP listener per launch that
 * takes the launcher's connection info (launcher-payload.ts decodes it) from an authenticated peer
 * only, and the requests spawngate later sends to the launcher's communication port.
 *
 * Who may answer: the public key and kernel id are no secrets (the launcher's command line, the user's
 * kernel list), so a payload proves nothing by decrypting. The peer does: the caller's `authenticate`
 * checks who opened the connection (on the local backend the uid owning the loopback peer, in
 * containers the workload's own address) as it opens.
 *
 * On loopback that first proof can come too late: EG's launchers connect, send and close at once, and
 * a socket no process holds any more is listed in /proc/net/tcp with uid 0 (or not at all), so its
 * sender cannot be told. Such a peer is "unidentified", not refused, and its payload is accepted only
 * when the caller's `vouch` finds a second proof in the payload itself (on the local backend: the key
 * and ports equal those of the connection file the launcher wrote into the kernel's own directory,
 * which no other user can read; launcher-file-proof.ts). A peer positively identified as someone else
 * stays refused whatever it sends.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import { decodeLauncherPayload, LauncherPayloadError, type LauncherReport, type RsaKeys } from './launcher-payload';

export { generateResponseKeys, decodeLauncherPayload, LauncherPayloadError, type LauncherReport, type RsaKeys } from './launcher-payload';

/** A payload is a few hundred bytes; anything much larger is not a launcher. */
const MAX_PAYLOAD_BYTES = 64 * 1024;

/** Linux `/proc/net/tcp` state of a socket in TIME_WAIT (listed with uid 0 and no inode). */
const TCP_TIME_WAIT = '06';

/**
 * The uid owning the client end of a loopback TCP connection (Linux `/proc/net/tcp`: local address
 * `127.0.0.1:<peerPort>` talking to `:<serverPort>`), or undefined when it cannot be told: the entry is
 * gone, or no process holds the socket any more (inode 0: closed and orphaned, FIN_WAIT or TIME_WAIT),
 * for which the kernel lists uid 0 whoever opened it.
 */
export async function loopbackPeerUid(peerPort: number, serverPort: number): Promise<number | undefined> {
  const table = await fsp.readFile('/proc/net/tcp', 'utf8').catch(() => '');
  const hex = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(`:${hex(peerPort)}`) && f[2]?.endsWith(`:${hex(serverPort)}`)) {
      if (f[3] === TCP_TIME_WAIT || f[9] === undefined || f[9] === '0') return undefined;
      return Number(f[7]);
    }
  }
  return undefined;
}

/** An IPv4 peer as Node reports it on a dual-stack socket (`::ffff:10.0.0.5`) in its plain form. */
export function plainAddress(address: string | undefined): string | undefined {
  return address?.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
}

/**
 * What a peer check concluded: the peer is the kernel's (`trusted`), is someone else (`refused`), or
 * could not be told (`unidentified`: only a payload the listener's `vouch` accepts is taken from it).
 */
export type PeerVerdict = { verdict: 'trusted' } | { verdict: 'refused'; reason: string } | { verdict: 'unidentified'; reason: string };

export const TRUSTED: PeerVerdict = { verdict: 'trusted' };

/** Judges who opened a connection, called as it opens (the peer may be gone by the time its payload is complete). */
export type PeerCheck = (peer: { address: string; port: number }, listenerPort: number) => Promise<PeerVerdict>;

/**
 * Trusts only processes of `uid` on the loopback interface (the local backend's kernels); a peer whose
 * uid can no longer be told is unidentified, one of another uid refused.
 */
export function loopbackUidCheck(uid: number): PeerCheck {
  return async (peer, listenerPort) => {
    const owner = await loopbackPeerUid(peer.port, listenerPort);
    if (owner === undefined) return { verdict: 'unidentified', reason: "the payload's sender had closed its connection before its uid could be read" };
    return owner === uid ? TRUSTED : { verdict: 'refused', reason: 'a payload came from a process of another user' };
  };
}

/** Resolves undefined when a decoded payload proves by itself that the kernel's launcher sent it, else the reason it does not. */
export type PayloadVouch = (report: LauncherReport) => Promise<string | undefined>;

export interface ResponseListenerOptions {
  /** Address to listen on; when it is not an address of this host, all addresses. */
  bind: string;
  /** Host the launcher is told to send to (`{response_address}` is `<advertised>:<port>`). */
  advertised: string;
  authenticate: PeerCheck;
  /** The second proof for payloads from an unidentified peer; without it they are dropped. */
  vouch?: PayloadVouch;
  /**
   * Whether version-0 payloads (readable by anyone who sees the traffic, see launcher-payload.ts)
   * are accepted; when not, an authenticated version-0 payload fails the launch with this message.
   */
  refuseVersion0?: string;
  /** Connections judged per second, beyond a burst of as many (default `CONNECTIONS_PER_SECOND`). */
  connectionsPerSecond?: number;
}

/**
 * A launcher connects once. Every connection costs a read of /proc/net/tcp and an RSA decryption
 * (about 0.4 ms, on the event loop) before it can be told from an impostor, and the port is no secret
 * to other users on the host (the kernel's argv), so a flood would take spawngate's CPU from everyone.
 * Beyond this rate connections are closed unread: a flood can then fail the launch it aims at (which
 * times out and can be retried), not the service.
 */
export const CONNECTIONS_PER_SECOND = 20;
/** Connections open at once; more are refused by the listener (each may buffer up to MAX_PAYLOAD_BYTES). */
const MAX_OPEN_CONNECTIONS = 32;

/**
 * One launch's response address. `report` resolves with the first payload that decrypts, names this
 * kernel and comes from a trusted peer (or from an unidentified one, vouched for by its content), and
 * rejects (`LauncherPayloadError`) when a trusted peer sends one that does not: that is the kernel's
 * own launcher failing, and waiting longer cannot help. Every other connection is dropped without an
 * answer and leaves `report` pending, so no one else can fail the launch either.
 */
export class ResponseListener {
  readonly report: Promise<LauncherReport>;
  private settle!: { resolve: (r: LauncherReport) => void; reject: (e: Error) => void };
  private lastError: string | undefined;
  private believedBy: 'peer' | 'payload' | undefined;
  /** Connections closed unread because they came faster than the listener judges them. */
  private flooded = 0;
  /** The token bucket of `admit`. */
  private tokens: number;
  private refilledAt = performance.now();

  private constructor(
    private readonly server: net.Server,
    readonly address: string,
    /** Connections judged per second, beyond a burst of as many. */
    private readonly rate: number,
  ) {
    this.tokens = rate;
    this.report = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.report.catch(() => undefined); // the caller may stop waiting first (the workload exited)
  }

  /** What the accepted payload was believed by: its sender (`authenticate`) or its own content (`vouch`). */
  get proof(): 'peer' | 'payload' | undefined {
    return this.believedBy;
  }

  /** Why the last connection was dropped, for a launch that times out. */
  get rejection(): string | undefined {
    if (this.flooded === 0) return this.lastError;
    const flood = `${this.flooded} connection(s) closed unread: more than ${this.rate} per second reached the response address`;
    return this.lastError === undefined ? flood : `${this.lastError}; ${flood}`;
  }

  /** Token bucket (hand-written: ten lines, one caller): whether one more connection may be judged now. */
  private admit(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.refilledAt) / 1000) * this.rate);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  static async open(keys: RsaKeys, kernelId: string, opts: ResponseListenerOptions): Promise<ResponseListener> {
    const server = await listen(opts.bind);
    const { port } = server.address() as net.AddressInfo;
    const listener = new ResponseListener(server, `${opts.advertised}:${port}`, opts.connectionsPerSecond ?? CONNECTIONS_PER_SECOND);
    server.maxConnections = MAX_OPEN_CONNECTIONS;
    server.on('connection', (sock) => {
      if (!listener.admit()) {
        listener.flooded++;
        sock.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      sock.setTimeout(10_000, () => sock.destroy());
      sock.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_PAYLOAD_BYTES) sock.destroy();
        else chunks.push(d);
      });
      sock.on('error', () => undefined);
      const peer = { address: plainAddress(sock.remoteAddress) ?? '', port: sock.remotePort ?? 0 };
      const verdict = opts.authenticate(peer, port).catch((err: Error): PeerVerdict => ({ verdict: 'refused', reason: `the peer could not be checked: ${err.message}` }));
      sock.on('end', () => {
        sock.end();
        void verdict.then((v) => listener.take(v, Buffer.concat(chunks).toString('utf8'), keys, kernelId, opts));
      });
    });
    return listener;
  }

  /** Judges one complete payload by its sender's verdict (see the class comment). */
  private async take(v: PeerVerdict, data: string, keys: RsaKeys, kernelId: string, opts: ResponseListenerOptions): Promise<void> {
    if (v.verdict === 'refused') {
      this.lastError = v.reason;
      return;
    }
    let report: LauncherReport;
    try {
      report = decodeLauncherPayload(keys, data, kernelId);
      if (report.version === 0 && opts.refuseVersion0) throw new LauncherPayloadError(opts.refuseVersion0);
    } catch (err) {
      this.lastError = (err as Error).message;
      // Only the kernel's own launcher may fail the launch; an unidentified sender's garbage proves nothing.
      if (v.verdict === 'trusted') this.settle.reject(err as Error);
      return;
    }
    if (v.verdict === 'unidentified') {
      const why = opts.vouch ? await opts.vouch(report).catch((err: Error) => `its payload could not be checked: ${err.message}`) : 'nothing else vouches for it';
      if (why !== undefined) {
        this.lastError = `${v.reason}, and ${why}`;
        return;
      }
    }
    this.believedBy ??= v.verdict === 'trusted' ? 'peer' : 'payload';
    this.settle.resolve(report);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Listens on an ephemeral port of `host`, or of every address when `host` is not one of this machine's. */
async function listen(host: string): Promise<net.Server> {
  const attempt = (h: string): Promise<net.Server> =>
    new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, h, () => resolve(server));
    });
  try {
    return await attempt(host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EADDRNOTAVAIL' && code !== 'ENOTFOUND' && code !== 'EAI_AGAIN') throw err;
    return attempt('0.0.0.0');
  }
}

/** Sends one request (`{signum}` or `{shutdown}`) to a launcher's communication port, as EG does. */
export function sendLauncherRequest(host: string, commPort: number, request: { signum: number } | { shutdown: 1 }, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port: commPort });
    sock.setTimeout(timeoutMs, () => sock.destroy(new Error(`launcher communication port ${host}:${commPort} timed out`)));
    sock.once('error', reject);
    sock.once('connect', () => sock.end(JSON.stringify(request)));
    sock.once('close', (hadError) => {
      if (!hadError) resolve();
    });
  });
}
