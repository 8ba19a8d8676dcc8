/**
 * The admin usage page (/admin/): a browser script compiled on its own (tsconfig.json here: DOM, no
 * modules) and served as static files. It reads only the admin API with the token kept in session
 * storage; every value from the server is written as text (textContent), never as markup.
 */

interface Experiment {
  name: string;
  active: boolean;
  cpu_request: number;
  cpu_limit: number;
  memory_request_mib: number;
  memory_limit_mib: number;
  gpu_limit: number;
  members: number;
}
interface Usage {
  experiment: string;
  kernels: number;
  cpu_request: number;
  cpu_limit: number;
  memory_request_mib: number;
  memory_limit_mib: number;
  gpu_limit: number;
}
interface Member {
  username: string;
  user_active: boolean;
}
interface Sample {
  sampled_at: string;
  experiment: string;
  kernels: number;
}
interface AuditEntry {
  id: number;
  created_at: string;
  actor: string;
  action: string;
  target: string | null;
  details: Record<string, unknown>;
}

const TOKEN_KEY = 'spawngate-admin-token';
const REFRESH_MS = 15_000;
// Distinguishable, each ≥ 4.5:1 against white.
const COLORS = ['#0b5394', '#b45309', '#047857', '#9d174d', '#5b21b6', '#374151', '#a16207', '#0e7490'];

const byId = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

class AuthError extends Error {}

async function api<T>(path: string): Promise<T> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const res = await fetch(path, { headers: { Authorization: `token ${token ?? ''}`, Accept: 'application/json' } });
  if (res.status === 401 || res.status === 403) {
    const body = (await res.json().catch(() => ({}))) as { message?: string };
    throw new AuthError(body.message ?? `refused (${res.status})`);
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { message?: string };
    throw new Error(body.message ?? `${path}: HTTP ${res.status}`);
  }
  return (await res.json()) as T;
}

function cell(row: HTMLTableRowElement, text: string, numeric = false): HTMLTableCellElement {
  const td = row.insertCell();
  td.textContent = text;
  if (numeric) td.className = 'num';
  return td;
}

const fmt = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(2));

function showLoggedIn(on: boolean): void {
  byId('login').hidden = on;
  byId('app').hidden = !on;
  byId('session').hidden = !on;
}

async function loadExperiments(): Promise<void> {
  const [{ experiments }, { usage }] = await Promise.all([
    api<{ experiments: Experiment[] }>('/api/admin/experiments'),
    api<{ usage: Usage[] }>('/api/admin/usage'),
  ]);
  const members = await Promise.all(
    experiments.map((e) => api<{ members: Member[] }>(`/api/admin/experiments/${encodeURIComponent(e.name)}/members`).then((m) => m.members)),
  );
  const tbody = byId<HTMLTableElement>('experiments').tBodies[0]!;
  tbody.replaceChildren();
  experiments.forEach((e, i) => {
    const u = usage.find((x) => x.experiment === e.name);
    const row = tbody.insertRow();
    row.dataset.experiment = e.name;
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = e.name;
    row.appendChild(th);
    cell(row, e.active ? 'yes' : 'no');
    const m = members[i] ?? [];
    const td = cell(row, '');
    if (m.length === 0) td.textContent = 'none';
    else {
      const details = document.createElement('details');
      const summary = document.createElement('summary');
      summary.textContent = `${m.length} member${m.length === 1 ? '' : 's'}`;
      const list = document.createElement('ul');
      for (const member of m) {
        const li = document.createElement('li');
        li.textContent = member.user_active ? member.username : `${member.username} (deactivated)`;
        list.appendChild(li);
      }
      details.append(summary, list);
      td.appendChild(details);
    }
    cell(row, `${fmt(e.cpu_request)} / ${fmt(e.cpu_limit)}`, true);
    cell(row, `${e.memory_request_mib} / ${e.memory_limit_mib}`, true);
    cell(row, String(e.gpu_limit), true);
    cell(row, String(u?.kernels ?? 0), true).dataset.field = 'kernels';
    cell(row, `${fmt(u?.cpu_request ?? 0)} / ${fmt(u?.cpu_limit ?? 0)}`, true).dataset.field = 'cpu';
    cell(row, `${u?.memory_request_mib ?? 0} / ${u?.memory_limit_mib ?? 0}`, true).dataset.field = 'memory';
    cell(row, String(u?.gpu_limit ?? 0), true).dataset.field = 'gpus';
  });
}

const SVG = 'http://www.w3.org/2000/svg';
function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A line per experiment over the last 24 hours, drawn by hand (no chart library, no CDN). */
async function loadHistory(): Promise<void> {
  const { samples } = await api<{ samples: Sample[] }>('/api/admin/usage/history?hours=24');
  const chart = byId('chart');
  chart.replaceChildren();
  const series = new Map<string, Sample[]>();
  for (const s of samples) series.set(s.experiment, [...(series.get(s.experiment) ?? []), s]);
  const caption = byId('chart-caption');
  if (samples.length === 0) {
    caption.textContent = 'No usage samples yet: one is taken every few minutes.';
    return;
  }
  const W = 880, H = 260, L = 44, R = 12, T = 10, B = 28;
  const now = Date.now();
  const from = now - 24 * 3600_000;
  const max = Math.max(1, ...samples.map((s) => s.kernels));
  const x = (t: number): number => L + ((t - from) / (now - from)) * (W - L - R);
  const y = (v: number): number => H - B - (v / max) * (H - T - B);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', 'aria-labelledby': 'chart-title chart-desc' });
  const peak = [...series.entries()].map(([name, s]) => `${name || '(no experiment)'}: now ${s[s.length - 1]!.kernels}, peak ${Math.max(...s.map((p) => p.kernels))}`);
  root.append(svg('title', { id: 'chart-title' }, 'Live kernels per experiment, last 24 hours'), svg('desc', { id: 'chart-desc' }, peak.join('; ')));
  for (const v of [0, Math.round(max / 2), max]) {
    root.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: '#ccc' }), svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(v)));
  }
  for (let h = 24; h >= 0; h -= 6) {
    const t = now - h * 3600_000;
    root.append(svg('text', { x: x(t), y: H - 8, 'text-anchor': 'middle' }, h === 0 ? 'now' : `-${h} h`));
  }
  const legend = document.createElement('ul');
  legend.className = 'legend';
  [...series.entries()].forEach(([, points], i) => {
    const color = COLORS[i % COLORS.length]!;
    const d = points.map((p, j) => `${j ? 'L' : 'M'}${x(Date.parse(p.sampled_at)).toFixed(1)},${y(p.kernels).toFixed(1)}`).join(' ');
    root.append(svg('path', { d, fill: 'none', stroke: color, 'stroke-width': 2, 'stroke-dasharray': i >= COLORS.length ? '6 3' : 'none' }));
    // Markers while a series is short, so a first sample (a line of one point) is visible too.
    if (points.length < 60) for (const p of points) root.append(svg('circle', { cx: x(Date.parse(p.sampled_at)).toFixed(1), cy: y(p.kernels).toFixed(1), r: 3, fill: color }));
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = color;
    li.append(sw, document.createTextNode(peak[i]!));
    legend.appendChild(li);
  });
  chart.append(root, legend);
  const first = new Date(samples[0]!.sampled_at).toLocaleString();
  caption.textContent = `${samples.length} samples (one per experiment per interval) since ${first}, kept in the database by the service.`;
}

async function loadAudit(): Promise<void> {
  const form = byId<HTMLFormElement>('audit-form');
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(form).entries()) {
    const value = String(v).trim();
    if (!value) continue;
    params.set(k, k === 'since' ? new Date(value).toISOString() : value);
  }
  const { entries } = await api<{ entries: AuditEntry[] }>(`/api/admin/audit?${params.toString()}`);
  const tbody = byId<HTMLTableElement>('audit').tBodies[0]!;
  tbody.replaceChildren();
  for (const e of entries) {
    const row = tbody.insertRow();
    cell(row, new Date(e.created_at).toLocaleString());
    cell(row, e.actor);
    cell(row, e.action);
    cell(row, e.target ?? '');
    const details = JSON.stringify(e.details);
    cell(row, details.length > 160 ? `${details.slice(0, 160)}…` : details).title = details;
  }
  byId('audit-caption').textContent = `Newest first; ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}${[...params.keys()].some((k) => k !== 'limit') ? ' matching the filters' : ''}`;
}

async function refresh(): Promise<void> {
  try {
    await Promise.all([loadExperiments(), loadHistory(), loadAudit()]);
    byId('app-error').textContent = '';
    byId('updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (err instanceof AuthError) return signOut(`Signed out: ${err.message}`);
    byId('app-error').textContent = (err as Error).message;
  }
}

let timer: number | undefined;

function signOut(message = ''): void {
  sessionStorage.removeItem(TOKEN_KEY);
  if (timer !== undefined) window.clearInterval(timer);
  timer = undefined;
  showLoggedIn(false);
  byId('login-error').textContent = message;
  byId<HTMLInputElement>('token').focus();
}

async function signIn(): Promise<void> {
  try {
    // One admin-only read decides: a user or hub token is refused here, before anything is shown.
    await api('/api/admin/usage');
  } catch (err) {
    return signOut(err instanceof AuthError ? `This token cannot sign in: ${err.message}` : (err as Error).message);
  }
  showLoggedIn(true);
  await refresh();
  byId('experiments-title').focus?.();
  timer = window.setInterval(() => void refresh(), REFRESH_MS);
}

document.addEventListener('DOMContentLoaded', () => {
  byId<HTMLFormElement>('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = byId<HTMLInputElement>('token');
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = '';
    void signIn();
  });
  byId('refresh').addEventListener('click', () => void refresh());
  byId('signout').addEventListener('click', () => signOut());
  byId<HTMLFormElement>('audit-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    loadAudit().catch((err: Error) => (byId('app-error').textContent = err.message));
  });
  byId<HTMLFormElement>('audit-form').addEventListener('reset', () => setTimeout(() => void loadAudit().catch(() => undefined), 0));
  if (sessionStorage.getItem(TOKEN_KEY)) void signIn();
  else showLoggedIn(false);
});
