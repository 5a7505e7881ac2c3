/**
 * Lingering close for error answers sent before the request body was read
 * (413, 415, 401 on an upload...). Node answers and then closes the socket
 * while the client is still sending; the client's kernel then receives a
 * reset and throws the answer away unread, so the client sees "connection
 * reset" instead of the 413. Like nginx's lingering_close, the socket here
 * half-closes (our side is done), reads and drops what the client still
 * sends, and is destroyed when the client stops or after a bound.
 *
 * This module owns only socket timing; it never writes to the socket.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** How long a socket keeps reading after the answer: enough for a client on a LAN to notice and stop. */
export const LINGER_MS = 5_000;
/** How much it reads at most before giving up on the client. */
export const LINGER_MAX_BYTES = 64 * 1024 * 1024;

const lingering = new WeakSet<Socket>();

/**
 * Arranges a lingering close of `req`'s socket, which Node destroys after
 * the answer when it was sent with `Connection: close`. Call it before the
 * answer is sent; calling it twice is harmless. Does nothing once the
 * request body has been read entirely (the socket closes normally then).
 */
export function lingerOnClose(req: IncomingMessage): void {
  const socket = req.socket as Socket & { destroySoon?: () => void };
  if (req.complete || !socket || socket.destroyed || lingering.has(socket)) return;
  lingering.add(socket);
  // Node calls destroySoon() once the answer has been written (res._last).
  socket.destroySoon = () => {
    let read = 0;
    const stop = () => {
      clearTimeout(timer);
      socket.destroy();
    };
    const timer = setTimeout(stop, LINGER_MS);
    timer.unref();
    socket.once('end', stop);
    socket.once('close', () => clearTimeout(timer));
    socket.end();
    // Node's parser still feeds the body to `req`; reading it in flowing mode drops it and keeps the socket reading.
    req.removeAllListeners('data');
    req.on('data', (chunk: Buffer) => {
      read += chunk.length;
      if (read > LINGER_MAX_BYTES) stop();
    });
    req.once('end', stop);
    req.once('error', stop);
    req.resume();
  };
}
