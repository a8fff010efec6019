/**
 * Text from outside (a server's error message, a database's names and log lines, a client's
 * application_name, a payload's summary) made safe to show a person. Terminals obey escape
 * sequences (colours, cursor moves, OSC window titles and hyperlinks), a newline can forge a line of
 * its own, and bidirectional controls reorder what is read: every such character is shown as a
 * visible escape (`\x1b`, `\u202e`) instead. Applied wherever such text reaches a terminal, a page
 * or a notice.
 */

/**
 * C0 controls, DEL, C1 controls, the line and paragraph separators, and the bidirectional marks,
 * embeddings, overrides and isolates.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function visible(char: string): string {
  const code = char.charCodeAt(0);
  return code < 0x100
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

export interface PrintableOptions {
  /** Keep line breaks (a page body); otherwise a newline is escaped too. @default false */
  multiline?: boolean;
  /** Cut longer text, marking the cut with "...". */
  maxLength?: number;
}

/** `text` with every control character shown as an escape; tabs become spaces. */
export function printable(text: string, options: PrintableOptions = {}): string {
  let out = text.replace(UNSAFE, (char) => {
    if (char === '\t') return ' ';
    if (char === '\n' && options.multiline) return char;
    return visible(char);
  });
  if (options.maxLength !== undefined && out.length > options.maxLength)
    out = `${out.slice(0, Math.max(0, options.maxLength - 3))}...`;
  return out;
}

/** Every string inside a JSON-like value made printable (one line each), returning a copy. */
export function printableDeep<T>(value: T): T {
  if (typeof value === 'string') return printable(value) as T;
  if (Array.isArray(value)) return value.map((item) => printableDeep(item)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = printableDeep(item);
    return out as T;
  }
  return value;
}
