/**
 * The spawngate side of bench/channels/roundtrip.ts, in its own process (so the benchmark's
 * websocket client does not share an event loop with the bridge): a `KernelClient` for the kernel
 * whose connection file is argv[2], behind an http+ws server. Prints `{"url": …}` once ready and
 * exits when stdin closes.
 */
import { readFileSync } from 'node:fs';
import { KernelClient, parseConnectionInfo } from '../../src/kernels/channels';
import { startBridgeServer } from '../../tests/channels/helpers';

async function main(): Promise<void> {
  const connection = parseConnectionInfo(readFileSync(process.argv[2]!, 'utf8'));
  const client = new KernelClient({ connection, kernelId: 'bench' });
  await client.kernelInfo(60_000);
  const server = await startBridgeServer(client);
  process.stdout.write(JSON.stringify({ url: server.url }) + '\n');
  process.stdin.resume();
  process.stdin.once('end', () => {
    void server
      .close()
      .then(() => client.close())
      .then(() => process.exit(0));
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
