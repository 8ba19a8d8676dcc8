/** Accepting the raw bytes real clients put in request targets (rewriter.ts), and the listener that applies it. */
export { RequestTargetRewriter, rewriteRequestLine, MAX_REQUEST_LINE_BYTES } from './rewriter';
export { createRawTargetListener, RawTargetSocket, upgradedSocket, HELD_LINE_TIMEOUT_MS } from './listener';
