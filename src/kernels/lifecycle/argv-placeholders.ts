/**
 * The `{name}` placeholders of a kernelspec argv: jupyter_client's `{connection_file}`,
 * `{resource_dir}`, and Enterprise Gateway's `{kernel_id}`, `{port_range}`,
 * `{response_address}` and `{public_key}`. One substitution, as both define it: a known name is
 * replaced wherever it appears in an argument, an unknown one is left as written.
 */
const PLACEHOLDER = /\{([A-Za-z0-9_]+)\}/g;

export type ArgvValues = Partial<Record<'connection_file' | 'resource_dir' | 'kernel_id' | 'port_range' | 'response_address' | 'public_key', string>>;

export function substituteArgv(argv: readonly string[], values: ArgvValues): string[] {
  const known = values as Record<string, string | undefined>;
  return argv.map((a) => a.replace(PLACEHOLDER, (whole, name: string) => known[name] ?? whole));
}

/** A launcher that reports its own connection info (EG's response-address protocol). */
export function usesResponseAddress(argv: readonly string[]): boolean {
  return argv.some((a) => a.includes('{response_address}'));
}

/** The argv takes the connection file spawngate writes; an EG launcher without it makes a temporary one. */
export function namesConnectionFile(argv: readonly string[]): boolean {
  return argv.some((a) => a.includes('{connection_file}'));
}

/** `[lo, hi]` as EG's launchers take it. */
export function portRangeArg(range: readonly [number, number]): string {
  return `${range[0]}..${range[1]}`;
}
