/**
 * End to end through the pages a person uses: Debian's JupyterHub 3.0 (dummy authenticator, logged in
 * through its login form with cookies) in front of a spawngate CLI process. Reads what the spawn page,
 * the pending page and the progress event stream that page follows show when spawngate refuses a spawn
 * (bad option, fair-share limit) or cannot list profiles, and the event sequence of a good spawn.
 */
import fs from 'node:fs';
import path from 'node:path';
import { sleep, startHub, startSpawngate, tmpDir, waitFor, type Hub, type Spawngate } from './harness';

jest.setTimeout(180_000);

const configDir = tmpDir('sg-pages-config');
const configFile = path.join(configDir, 'spawngate.yaml');
// Two profiles for ann, bob and eve, so the hub shows them a form (dee gets none); starts wait 2-4 s so
// the progress stream sees them pending.
fs.writeFileSync(
  configFile,
  `servers:
  max_servers_per_user: 1
profiles:
  - slug: standard
    display_name: Standard
    default: true
    command: ["/bin/sh", "-c", "sleep 2; exec jupyterhub-singleuser \\"$@\\"", "sh"]
  - slug: other
    display_name: Other
    allowed_users: [h15p-ann, h15p-bob]
  - slug: broken
    display_name: Broken on purpose
    allowed_users: [h15p-eve]
    command: ["/bin/sh", "-c", "sleep 4; echo 'fatal: boom-marker' >&2; exit 3"]
`,
);

type Event = Record<string, unknown>;
type Page = { status: number; url: string; html: string; retryAfter: string | null };

/** What a browser keeps: the hub's cookies. Redirects are followed by hand, as a browser does. */
class Browser {
  private cookies = new Map<string, string>();

  constructor(private readonly base: string) {}

  private remember(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const value = pair!.slice(eq + 1);
      if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '""') this.cookies.delete(pair!.slice(0, eq));
      else this.cookies.set(pair!.slice(0, eq), value);
    }
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { Cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '), ...extra };
  }

  /** One request, no redirect followed. */
  async request(method: string, url: string, opts: { form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Response> {
    const full = url.startsWith('http') ? url : `${this.base}${url}`;
    const headers = this.headers(opts.headers);
    let body: string | undefined;
    if (opts.form) {
      const xsrf = this.cookies.get('_xsrf');
      // JupyterHub >= 4.1 wants the _xsrf field; 3.0 sets no such cookie and ignores it.
      body = new URLSearchParams({ ...(xsrf ? { _xsrf: decodeURIComponent(xsrf) } : {}), ...opts.form }).toString();
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(full, { method, headers, body, redirect: 'manual' });
    this.remember(res);
    return res;
  }

  /** A request and the redirects after it; returns the last response, its URL and its text. */
  async go(method: string, url: string, form?: Record<string, string>): Promise<Page> {
    let res = await this.request(method, url, { form });
    let at = new URL(url, this.base).toString();
    for (let i = 0; i < 10 && res.status >= 300 && res.status < 400; i++) {
      at = new URL(res.headers.get('location')!, at).toString();
      res = await this.request('GET', at);
    }
    return { status: res.status, url: at, html: await res.text(), retryAfter: res.headers.get('retry-after') };
  }

  async login(name: string): Promise<void> {
    await this.go('GET', '/hub/login');
    const res = await this.go('POST', '/hub/login', { username: name, password: 'any' });
    if (!this.cookies.has('jupyterhub-hub-login')) throw new Error(`login of ${name} failed: ${res.status} ${res.html.slice(0, 500)}`);
  }

  /**
   * The progress stream the pending page follows (its EventSource: cookie auth, Referer of the page),
   * or undefined when the hub refuses it: JupyterHub 3.0 answers 400 "not starting" in the moment
   * between a failed start and the end of its clean-up, and a browser's EventSource then gives up.
   */
  async progressOf(pendingPage: { url: string; html: string }): Promise<Event[] | undefined> {
    const m = /new EventSource\("([^"]+)"\)/.exec(pendingPage.html);
    if (!m) throw new Error(`no progress URL in the pending page: ${pendingPage.html.slice(0, 500)}`);
    const res = await this.request('GET', m[1]!, { headers: { Accept: 'text/event-stream', Referer: pendingPage.url } });
    if (res.status !== 200) {
      expect(await res.text()).toMatch(/is not starting/);
      return undefined;
    }
    return (await res.text())
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => JSON.parse(l.slice(5)) as Event);
  }
}

/** The text of an HTML page as a person reads it: tags dropped, entities decoded, spaces collapsed. */
function readable(html: string): string {
  return html
    .replace(/<script[\s\S]*?<\/script>/g, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

let sg: Spawngate;
let hub: Hub;

beforeAll(async () => {
  sg = await startSpawngate({ env: { SPAWNGATE_CONFIG: configFile } });
  // The hub's default slow_spawn_timeout (the harness sets 0): a refusal that comes back within a second
  // of the form post is answered on the spawn page itself, a later one on the pending page. Both must
  // show spawngate's message; which one a run takes depends on the machine's load.
  hub = await startHub({ spawngateUrl: sg.url, hubToken: sg.hubToken, extraConfig: "c.JupyterHub.tornado_settings = {'slow_spawn_timeout': 10}" });
});

afterAll(async () => {
  await hub?.stop();
  await sg?.stop();
});


/**
 * Opens the spawn page, submits its form (when `form` is given; without, the page itself starts the
 * spawn) and follows where the hub leads until the spawn is over: the spawn page again with an error,
 * an error page, the page of a failed spawn, or the server. Returns the progress events the pending
 * page received, if it was shown.
 */
async function spawnThroughPages(b: Browser, spawnPath: string, form?: Record<string, string>): Promise<{ events: Event[]; after: Page }> {
  let page = await b.go('GET', spawnPath);
  if (form) {
    expect(page.status).toBe(200);
    expect(page.html).toContain('name="profile"');
    page = await b.go('POST', spawnPath, form);
  }
  let events: Event[] = [];
  const deadline = Date.now() + 90_000;
  // As a person at the pending page: it follows the progress stream, then reloads (the page does so
  // itself when ready, and while a stop is pending; a person does after a failure) until it leads on.
  while (page.status === 200 && /\/hub\/spawn-pending\//.test(page.url)) {
    if (Date.now() > deadline) throw new Error(`still pending after 90 s: ${readable(page.html).slice(0, 300)}`);
    if (/new EventSource/.test(page.html)) events = (await b.progressOf(page)) ?? events;
    else await sleep(500);
    page = await b.go('GET', page.url);
  }
  return { events, after: page };
}

test('a good spawn: "Server requested" once, spawngate\'s steps in one voice, the hub\'s ready event last', async () => {
  const b = new Browser(hub.url);
  await b.login('h15p-ann');
  const { events, after } = await spawnThroughPages(b, '/hub/spawn', { profile: 'standard' });
  const messages = events.map((e) => String(e.message));
  expect(messages.filter((m) => m === 'Server requested')).toHaveLength(1);
  expect(events[0]).toEqual({ progress: 0, message: 'Server requested' });
  expect(messages).toContain('Starting the server on the local backend');
  expect(messages).toContain('Waiting for the server to answer');
  // The hub's own ready event, with the proxied URL; spawngate's (with the server's real address) is not relayed.
  expect(events.at(-1)).toMatchObject({ progress: 100, ready: true, url: '/user/h15p-ann/' });
  expect(events.filter((e) => e.ready)).toHaveLength(1);
  expect(messages.some((m) => /127\.0\.0\.1/.test(m))).toBe(false);
  for (const m of messages.slice(0, -1)) expect(m).toMatch(/^[A-Z][^\n]*[^.]$/);
  // The pending page then leads to the running server.
  expect(after.url).toMatch(/\/user\/h15p-ann\//);
});

test('a server that fails to start: the reason once, in the hub\'s failed event, with the last output', async () => {
  const b = new Browser(hub.url);
  await b.login('h15p-eve');
  const { events, after } = await spawnThroughPages(b, '/hub/spawn', { profile: 'broken' });
  expect(events.length).toBeGreaterThan(0); // the start takes 4 s: the page follows it
  const messages = events.map((e) => String(e.message));
  expect(messages.filter((m) => m === 'Server requested')).toHaveLength(1);
  expect(messages).toContain('Starting the server on the local backend');
  const failed = events.filter((e) => e.failed);
  expect(failed).toHaveLength(1);
  expect(failed[0]).toBe(events.at(-1));
  expect(String(failed[0]!.message)).toMatch(/^Spawn failed: server exited .*before it was ready/);
  expect(String(failed[0]!.html_message)).toContain('boom-marker');
  // spawngate's own failure event is not relayed beside the hub's
  expect(messages.filter((m) => /before it was ready/.test(m))).toHaveLength(1);
  expect(after.status).toBe(500);
  expect(readable(after.html)).toContain('boom-marker');
});

test('a refused option: the spawn page (or the pending page and its progress stream) shows spawngate\'s message', async () => {
  const b = new Browser(hub.url);
  await b.login('h15p-bob');
  const { events, after } = await spawnThroughPages(b, '/hub/spawn', { profile: 'no-such-profile' });
  const expected = "unknown profile 'no-such-profile'; available: 'standard', 'other'";
  if (events.length) expect(events.at(-1)).toMatchObject({ failed: true, message: `Spawn failed: ${expected}` });
  expectRefusalShown(after, expected);
});

/** The page the person ends on says what spawngate said, not one of the hub's stock texts. */
function expectRefusalShown(page: Page, expected: string): void {
  const text = readable(page.html);
  if (/\/hub\/spawn-pending\//.test(page.url)) {
    // the "Spawn failed" page the pending page becomes
    expect(page.status).toBe(500);
    expect(text).toContain('Spawn failed');
  } else if (page.status === 200) {
    // the spawn form again, the reason above it
    expect(text).toContain(`Error: ${expected}`);
  }
  expect(text).toContain(expected);
  expect(text).not.toMatch(/Internal Server Error|Unhandled error|Failed to start your server on the last attempt/);
}

test('a fair-share limit: the page shows the limit spawngate names', async () => {
  const b = new Browser(hub.url);
  await b.login('h15p-ann'); // her default server from the first test is running: the limit is 1
  await waitFor('h15p-ann running', async () => (await hub.api<{ servers: Record<string, { ready: boolean }> }>('GET', '/users/h15p-ann')).body.servers['']?.ready, 60_000);
  const { events, after } = await spawnThroughPages(b, '/hub/spawn/h15p-ann/second', { profile: 'standard' });
  const expected = "user 'h15p-ann' already has 1 servers (limit 1, servers.max_servers_per_user)";
  if (events.length) expect(String(events.at(-1)!.message)).toContain(expected);
  expectRefusalShown(after, expected);
  // The refused server left nothing running on spawngate's side.
  const res = await fetch(`${sg.url}/api/users/h15p-ann/servers/second`, { headers: { Authorization: `token ${sg.hubToken}` } });
  expect(res.status).toBe(404);
});

test('a refusal of a spawn without a form: the page the spawn link opens shows the message', async () => {
  expect((await hub.api('POST', '/users/h15p-dee')).status).toBeLessThan(300);
  expect((await hub.api('POST', '/users/h15p-dee/server')).status).toBeLessThan(300);
  await waitFor('h15p-dee running', async () => (await hub.api<{ servers: Record<string, { ready: boolean }> }>('GET', '/users/h15p-dee')).body.servers['']?.ready, 60_000);
  const b = new Browser(hub.url);
  await b.login('h15p-dee');
  // dee is offered one profile: no form, opening the page starts the spawn
  const { after } = await spawnThroughPages(b, '/hub/spawn/h15p-dee/second');
  const expected = "user 'h15p-dee' already has 1 servers (limit 1, servers.max_servers_per_user)";
  if (!/\/hub\/spawn-pending\//.test(after.url)) {
    // answered at once: the hub's error page, with spawngate's status and message
    expect(after.status).toBe(429);
    expect(readable(after.html)).toContain('429 : Too Many Requests');
    expect(after.retryAfter).toMatch(/^[1-9][0-9]*$/);
  }
  expectRefusalShown(after, expected);
  // The hub's REST API answers the same refusal with spawngate's status, message and Retry-After.
  const res = await fetch(`${hub.url}/hub/api/users/h15p-dee/servers/third`, { method: 'POST', headers: { Authorization: `token ${hub.token}` } });
  expect(res.status).toBe(429);
  expect(res.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
  expect(((await res.json()) as { message: string }).message).toBe(expected);
});

test('profiles unavailable: the spawn page explains instead of "500 : Internal Server Error", and starts nothing', async () => {
  const deadHub = await startHub({ spawngateUrl: 'http://127.0.0.1:9', hubToken: sg.hubToken });
  try {
    const b = new Browser(deadHub.url);
    await b.login('h15p-cy');
    const page = await b.go('GET', '/hub/spawn');
    expect(page.status).toBe(200);
    const text = readable(page.html);
    expect(text).toContain('Server profiles are unavailable.');
    expect(text).toContain('spawngate at http://127.0.0.1:9 is unreachable');
    expect(text).toContain('Reload this page to try again.');
    expect(text).not.toMatch(/500 : Internal Server Error/);

    // Pressing Start anyway: the form again, with the reason no server was started.
    const posted = await b.go('POST', '/hub/spawn', { spawngate_profiles_unavailable: '1' });
    expect(posted.url).toMatch(/\/hub\/spawn$/);
    expect(readable(posted.html)).toContain('Error: No server was started because the server profiles could not be listed. Reload this page to try again.');
    const { body } = await deadHub.api<{ servers: Record<string, unknown> }>('GET', '/users/h15p-cy');
    expect(body.servers).toEqual({});
  } finally {
    await deadHub.stop();
  }
});
