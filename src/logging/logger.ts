/**
 * Structured JSON logging. Every record passes through `redact`, which removes values of keys that
 * look secret and any string that equals a registered secret, so tokens and the hub's environment
 * never reach a log even when a caller passes them by mistake.
 */
import winston from 'winston';

const SECRET_KEY = /(token|secret|password|passwd|key|authorization|cookie|api_token|credential)/i;
const registeredSecrets = new Set<string>();

/** Registers a value that must never appear in logs (e.g. configured tokens). */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 8) registeredSecrets.add(value);
}

function scrubString(s: string): string {
  let out = s;
  for (const secret of registeredSecrets) if (out.includes(secret)) out = out.split(secret).join('[REDACTED]');
  return out.replace(/(token\s+|Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, '$1[REDACTED]');
}

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6) return '[…]';
  if (typeof value === 'string') return scrubString(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { name: value.name, message: scrubString(value.message) };
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // Whole environments are never logged, only their keys.
      if (k === 'env' && v && typeof v === 'object') out[k] = Object.keys(v as object);
      else out[k] = SECRET_KEY.test(k) ? '[REDACTED]' : redact(v, depth + 1);
    }
    return out;
  }
  return value;
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === 'level' || key === 'timestamp') continue;
    const value = (info as Record<string, unknown>)[key];
    (info as Record<string, unknown>)[key] = key === 'message' ? redact(value) : SECRET_KEY.test(key) ? '[REDACTED]' : redact(value);
  }
  return info;
});

export const logger = winston.createLogger({
  level: process.env.SPAWNGATE_LOG_LEVEL ?? 'info',
  format: winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.json()),
  defaultMeta: { service: 'spawngate' },
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
});

export type Logger = winston.Logger;
