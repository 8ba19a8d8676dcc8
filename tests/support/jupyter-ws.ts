/** A minimal Jupyter websocket client for tests: connect, execute code, collect output. */
import WebSocket from 'ws';

export interface Msg {
  header: { msg_type: string; msg_id: string };
  parent_header: { msg_id?: string };
  content: Record<string, unknown>;
  channel: string;
}

/** An execute_request as a websocket client sends it (jupyter_server's JSON framing). */
export function executeRequest(code: string, ids: { msgId: string; session: string; username?: string }): string {
  return JSON.stringify({
    header: { msg_id: ids.msgId, msg_type: 'execute_request', username: ids.username ?? 'test', session: ids.session, date: new Date().toISOString(), version: '5.3' },
    parent_header: {},
    metadata: {},
    content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
    channel: 'shell',
  });
}

export function connectWs(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
}

/** Sends execute_request; resolves once its execute_reply and the following idle status arrived. */
export function execute(ws: WebSocket, code: string, timeoutMs = 20000): Promise<{ stdout: string; reply: Msg; results: string[] }> {
  const msgId = `exec-${Math.random().toString(36).slice(2)}`;
  return new Promise((resolve, reject) => {
    let stdout = '';
    const results: string[] = [];
    let reply: Msg | undefined;
    let idle = false;
    const timer = setTimeout(() => {
      ws.off('message', onMessage);
      reject(new Error(`no reply to ${code} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (data: WebSocket.RawData): void => {
      const m = JSON.parse(data.toString()) as Msg;
      if (m.parent_header?.msg_id !== msgId) return;
      if (m.header.msg_type === 'stream') stdout += String(m.content.text);
      if (m.header.msg_type === 'execute_result') results.push(String((m.content.data as Record<string, string>)['text/plain']));
      if (m.header.msg_type === 'execute_reply') reply = m;
      if (m.header.msg_type === 'status' && m.content.execution_state === 'idle') idle = true;
      if (reply && idle) {
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve({ stdout, reply, results });
      }
    };
    ws.on('message', onMessage);
    ws.send(executeRequest(code, { msgId, session: 'test-session' }));
  });
}
