/**
 * QMP messages are JSON objects separated by CRLF (QEMU writes one object
 * per line). This decoder turns arbitrary socket chunks into parsed objects.
 */
export type QmpMessage = Record<string, unknown>;

export class QmpLineDecoder {
  private pending = '';

  /** Feeds a chunk; returns every complete message it finished. Throws SyntaxError on a malformed line. */
  push(chunk: Buffer | string): QmpMessage[] {
    this.pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const messages: QmpMessage[] = [];
    let newline: number;
    while ((newline = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, newline).trim();
      this.pending = this.pending.slice(newline + 1);
      if (line.length === 0) continue;
      const parsed: unknown = JSON.parse(line);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new SyntaxError(`QMP message is not a JSON object: ${line.slice(0, 200)}`);
      }
      messages.push(parsed as QmpMessage);
    }
    return messages;
  }
}

/** Serialises one QMP command with an id used to match its reply. */
export function encodeQmpCommand(execute: string, id: string, args?: Record<string, unknown>): string {
  return JSON.stringify(args === undefined ? { execute, id } : { execute, arguments: args, id }) + '\r\n';
}
