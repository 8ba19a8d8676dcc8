/**
 * Runs before every test file (jest `setupFiles`). Jest reuses a worker process for several files, and
 * the umask is process-wide: a file whose service or CLI set spawngate's private 077 umask and did not
 * get to restore it would make the next file's trees unreadable to the other users its tests run as.
 * Every file starts from the usual 022.
 */
process.umask(0o022);
