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
    const startBytes = socket.bytesRead;
    const stop = () => {
      clearTimeout(timer);
      clearInterval(meter);
      socket.destroy();
    };
    const timer = setTimeout(stop, LINGER_MS);
    // Node's parser reads the socket natively and drops the body of a dumped request, so no 'data' event counts it: bytesRead does.
    const meter = setInterval(() => {
      if (socket.bytesRead - startBytes > LINGER_MAX_BYTES) stop();
    }, 20);
    timer.unref();
    meter.unref();
    socket.once('end', stop);
    socket.once('close', () => (clearTimeout(timer), clearInterval(meter)));
    socket.end();
    // Keep the parser reading (and dropping) the rest of the body; when it ends, the client is done.
    req.once('end', stop);
    req.once('error', stop);
    req.resume();
  };
}
