/**
 * `WS /api/kernels/{id}/channels`: authenticates the upgrade like any request (header token, or
 * `?token=` for browsers), checks the kernel belongs to the caller, and hands the socket to the
 * kernel's bridge. Any replica can serve any kernel: the connection info comes from the database.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { TOKEN_PREFIX, verifyToken, type Db } from '../db';
import { IdentityProviderUnavailableError, TokenRejectedError, UserDeactivatedError, type OidcIdentity } from '../identity';
import { kernelWebSocketServerOptions, type KernelService } from '../kernels';
import type { Logger } from '../logging';
import { kernelHttpError } from './routes/gateway-kernels';
import { HttpError } from './errors';
import { createHash, timingSafeEqual } from 'node:crypto';

const PATH = /^\/api\/kernels\/([0-9a-fA-F-]{36})\/channels$/;

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function reject(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ reason: new HttpError(status, message).reason, message });
  socket.end(`HTTP/1.1 ${status} ${new HttpError(status, message).reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export function createKernelChannelsHandler(deps: { db: Db; kernels: KernelService; hubToken?: string; adminToken?: string; logger: Logger; oidc?: Pick<OidcIdentity, 'authenticate'> }) {
  const wss = new WebSocketServer({ noServer: true, ...kernelWebSocketServerOptions({ maxFrameBytes: deps.kernels.maxFrameBytes }) });

  async function who(req: IncomingMessage, url: URL): Promise<{ username?: string } | undefined> {
    const header = req.headers.authorization;
    const m = header ? /^(?:token|bearer)\s+(\S+)\s*$/i.exec(header) : null;
    const token = m?.[1] ?? url.searchParams.get('token') ?? undefined;
    if (!token) return undefined;
    const given = digest(token);
    for (const configured of [deps.adminToken, deps.hubToken]) {
      if (configured !== undefined && timingSafeEqual(given, digest(configured))) return {};
    }
    const found = await verifyToken(deps.db, token);
    if (found) return { username: found.username };
    if (!deps.oidc || token.startsWith(TOKEN_PREFIX)) return undefined;
    // An OIDC access token, as on the HTTP routes: admins may reach any kernel, users their own.
    try {
      const p = await deps.oidc.authenticate(token);
      return p.admin ? {} : { username: p.username };
    } catch (err) {
      if (err instanceof TokenRejectedError || err instanceof UserDeactivatedError) return undefined;
      throw err;
    }
  }

  return {
    /** `server.on('upgrade', handler)`; ignores paths that are not kernel channels. */
    async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
      const url = new URL(req.url ?? '/', 'http://spawngate');
      const m = PATH.exec(url.pathname);
      if (!m) return reject(socket, 404, `no websocket at ${url.pathname}`);
      try {
        const caller = await who(req, url);
        if (!caller) return reject(socket, 401, 'missing or invalid token');
        const row = await deps.kernels.forChannels(caller.username, m[1]!.toLowerCase());
        // Before the upgrade completes the client can send nothing, so nothing it sends can race the
        // iopub subscription of a freshly created bridge.
        await deps.kernels.registry.ready(row, 3000);
        wss.handleUpgrade(req, socket, head, (ws) => {
          deps.kernels.registry.attach(row, ws, url.searchParams.get('session_id') ?? undefined);
        });
      } catch (err) {
        const mapped = kernelHttpError(err);
        if (mapped instanceof HttpError) return reject(socket, mapped.status, mapped.message);
        deps.logger.error('websocket upgrade failed', { error: err });
        if (err instanceof IdentityProviderUnavailableError) return reject(socket, 503, err.message);
        const status = (err as Error)?.name === 'DatabaseUnavailableError' ? 503 : 500;
        return reject(socket, status, status === 503 ? 'database unavailable' : 'internal error');
      }
    },
    close(): void {
      for (const c of wss.clients) c.terminate();
      wss.close();
    },
  };
}
