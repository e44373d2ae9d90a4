/**
 * Info protocol (proto type 1) codec. Request body: commands each ending in '\n'. Response body:
 * `<command as received>\t<value>\n` per command, in request order.
 */
import type { InfoRequest } from '../api.js';
import { ProtoType, encodeFrame } from './proto.js';

/** Parses one command: `name`, `name:k=v;k=v`, or `name/a/b`. */
export function parseInfoCommand(raw: string): InfoRequest {
  const colon = raw.indexOf(':');
  const slash = raw.indexOf('/');
  let cut = -1;
  if (colon >= 0 && (slash < 0 || colon < slash)) cut = colon;
  else if (slash >= 0) cut = slash;
  const name = cut < 0 ? raw : raw.slice(0, cut);
  const params: Record<string, string> = {};
  const positional: string[] = [];
  if (cut >= 0) {
    const rest = raw.slice(cut + 1);
    if (raw[cut] === ':') {
      for (const part of rest.split(';')) {
        if (part === '') continue;
        const eq = part.indexOf('=');
        if (eq < 0) params[part] = '';
        else params[part.slice(0, eq)] = part.slice(eq + 1);
      }
    } else {
      for (const part of rest.split('/')) positional.push(part);
    }
  }
  return { raw, name, params, positional };
}

/** Splits an info request body into commands (the trailing '\n' of each is dropped). */
export function parseInfoRequest(body: Buffer): InfoRequest[] {
  const text = body.toString('utf8');
  const out: InfoRequest[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    out.push(parseInfoCommand(line));
  }
  return out;
}

/** Encodes an info request body from command strings. */
export function encodeInfoRequest(commands: readonly string[]): Buffer {
  return Buffer.from(commands.map((c) => `${c}\n`).join(''), 'utf8');
}

export function encodeInfoRequestFrame(commands: readonly string[]): Buffer {
  return encodeFrame(ProtoType.INFO, encodeInfoRequest(commands));
}

/** Encodes an info response body. Values must not contain '\n' (they are replaced by spaces). */
export function encodeInfoResponse(answers: ReadonlyArray<readonly [string, string]>): Buffer {
  let s = '';
  for (const [cmd, value] of answers) s += `${cmd}\t${value.replace(/\n/g, ' ')}\n`;
  return Buffer.from(s, 'utf8');
}

export function encodeInfoResponseFrame(answers: ReadonlyArray<readonly [string, string]>): Buffer {
  return encodeFrame(ProtoType.INFO, encodeInfoResponse(answers));
}

/** Parses an info response body into (command -> value), as the C client does. */
export function parseInfoResponse(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of body.toString('utf8').split('\n')) {
    if (line === '') continue;
    const tab = line.indexOf('\t');
    if (tab < 0) out.set(line, '');
    else out.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return out;
}

/** `ERROR:<code>:<message>` as the clients parse it. */
export function infoError(code: number, message: string): string {
  return `ERROR:${code}:${message.replace(/[\n\t]/g, ' ')}`;
}

/** Parses an info error value; undefined when the value is not an error. */
export function parseInfoError(value: string): { code: number; message: string } | undefined {
  if (!value.startsWith('ERROR:') && !value.startsWith('FAIL:')) return undefined;
  const rest = value.slice(value.indexOf(':') + 1);
  const c = rest.indexOf(':');
  const codeText = c < 0 ? rest : rest.slice(0, c);
  const code = Number.parseInt(codeText, 10);
  return { code: Number.isFinite(code) && code !== 0 ? code : 1, message: c < 0 ? '' : rest.slice(c + 1) };
}
