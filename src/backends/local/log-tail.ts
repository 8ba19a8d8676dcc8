/**
 * Reading the last lines of a (possibly huge) log file from its end, in bounded chunks: never more
 * than `maxBytes` is read, whatever the file's size.
 */
import { promises as fsp } from 'node:fs';

const CHUNK = 64 * 1024;

/** Last `lines` lines of `file`, oldest first; [] when the file does not exist. */
export async function tailLines(file: string, lines: number, maxBytes = 4 * 1024 * 1024): Promise<string[]> {
  if (!(lines > 0)) return [];
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  try {
    const { size } = await handle.stat();
    const chunks: Buffer[] = [];
    let position = size;
    let newlines = 0;
    let read = 0;
    // One newline more than lines wanted, to know the first kept line is complete.
    while (position > 0 && newlines <= lines && read < maxBytes) {
      const length = Math.min(CHUNK, position, maxBytes - read);
      position -= length;
      const buf = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buf, 0, length, position);
      const got = buf.subarray(0, bytesRead);
      chunks.unshift(got);
      read += bytesRead;
      for (const byte of got) if (byte === 0x0a) newlines++;
      if (bytesRead < length) break;
    }
    const parts = Buffer.concat(chunks).toString('utf8').split('\n');
    if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
    if (position > 0 && parts.length > 0) parts.shift(); // began mid-line
    return parts.slice(-lines);
  } finally {
    await handle.close();
  }
}
