/**
 * `WS /api/kernels/{id}/channels`: authenticates the upgrade with the same identity resolver as every
 * request (header token, or `?token=` for browsers), checks the kernel belongs to the caller, and hands
 * the socket to the kernel's bridge. Refusals go through the same error mapper as HTTP. Any replica can
 * serve any kernel: the connection info comes from the database. Once open, a socket stays only while its
 * credential holds (`OpenSocketGuard`: deactivation, revocation and expiry close it with 1008).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { kernelWebSocketServerOptions, type KernelService } from '../../kernels';
import type { Queryable } from '../../db';
import type { Logger } from '../../logging';
import { actingUser } from '../auth/identity';
import { OpenSocketGuard } from '../auth/open-socket-guard';
import { headerToken, type IdentityResolver } from '../auth/resolve-identity';
import { errorBody, toHttpAnswer, type HttpAnswer } from '../error-mapper';
import { notFound, unauthorized } from '../errors';
import { upgradedSocket } from '../raw-target';

const PATH = /^\/api\/kernels\/([0-9a-fA-F-]{36})\/channels$/;

/** Answers the upgrade request with a plain HTTP error response and closes the socket. */
function reject(socket: Duplex, answer: HttpAnswer): void {
  const { reason, message } = errorBody(answer);
  const body = JSON.stringify({ reason, message });
  const headers = Object.entries(answer.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${answer.status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${headers}Connection: close\r\n\r\n${body}`,
  );
}

export interface KernelChannelsDeps {
  kernels: KernelService;
  resolveIdentity: IdentityResolver;
  logger: Logger;
  /** Where open sockets' credentials are re-checked. */
  db: Queryable;
  /** How often, in ms (default 1000). */
  recheckMs?: number;
}

export function createKernelChannelsHandler(deps: KernelChannelsDeps) {
  const wss = new WebSocketServer({ noServer: true, ...kernelWebSocketServerOptions({ maxFrameBytes: deps.kernels.maxFrameBytes }) });
  const guard = new OpenSocketGuard({ db: deps.db, logger: deps.logger, intervalMs: deps.recheckMs });

  return {
    /** `server.on('upgrade', handler)`; answers 404 for paths that are not kernel channels. */
    async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
      // Node's HTTP server stops listening for the socket's errors once it emits 'upgrade', and `ws`
      // starts only when it takes the socket: a client resetting in between must not be an uncaught
      // 'error' (any caller could take the service down). Kept after a refusal: writing it may fail too.
      const onSocketError = (err: Error) => deps.logger.debug('websocket upgrade: client connection failed', { error: err.message });
      socket.on('error', onSocketError);
      const url = new URL(req.url ?? '/', 'http://spawngate');
      try {
        const m = PATH.exec(url.pathname);
        if (!m) throw notFound(`no websocket at ${url.pathname}`);
        const token = headerToken(req) ?? url.searchParams.get('token') ?? undefined;
        if (!token) throw unauthorized();
        // Admins reach any kernel (username undefined), users their own; the hub token is refused.
        const identity = await deps.resolveIdentity(token);
        const username = actingUser(identity, undefined);
        const row = await deps.kernels.forChannels(username, m[1]!.toLowerCase());
        // Before the upgrade completes the client can send nothing, so nothing it sends can race the
        // iopub subscription of a freshly created bridge.
        await deps.kernels.registry.ready(row, 3000);
        // The client left while we checked: nothing to answer, no bridge to attach.
        if (socket.destroyed) return;
        // The TCP socket itself from here on: frames skip the raw-target layer (nothing HTTP follows).
        // `ws` listens for its errors from its first line on, in this same tick.
        socket.removeListener('error', onSocketError);
        const upgraded = upgradedSocket(socket, head);
        wss.handleUpgrade(req, upgraded.socket, upgraded.head, (ws) => {
          guard.track(ws, token, identity);
          deps.kernels.registry.attach(row, ws, url.searchParams.get('session_id') ?? undefined);
        });
      } catch (err) {
        const answer = toHttpAnswer(err);
        if (answer.status >= 500) deps.logger.error('websocket upgrade failed', { status: answer.status, error: err });
        reject(socket, answer);
      }
    },
    /** The guard of this replica's open sockets (tests run a pass with `guard.check()`). */
    guard,
    close(): void {
      guard.close();
      for (const c of wss.clients) c.terminate();
      wss.close();
    },
  };
}
