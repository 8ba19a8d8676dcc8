/**
 * jose and openid-client are ES modules only; spawngate compiles to CommonJS (and jest runs CommonJS),
 * so they are loaded with a real dynamic `import()` that the compilers leave alone — the same way the
 * kubernetes backend loads @kubernetes/client-node.
 */
import type * as Jose from 'jose';
import type * as OpenIdClient from 'openid-client';

export type JoseModule = typeof Jose;
export type OpenIdClientModule = typeof OpenIdClient;

const importEsm = eval('(specifier) => import(specifier)') as (specifier: string) => Promise<unknown>;

let jose: Promise<JoseModule> | undefined;
let openid: Promise<OpenIdClientModule> | undefined;

export function loadJose(): Promise<JoseModule> {
  jose ??= importEsm('jose') as Promise<JoseModule>;
  return jose;
}

export function loadOpenIdClient(): Promise<OpenIdClientModule> {
  openid ??= importEsm('openid-client') as Promise<OpenIdClientModule>;
  return openid;
}
