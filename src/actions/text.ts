/** Quotes a word for bash only when it needs it: `a b` → `'a b'`, `it's` → `'it'\''s'`. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** One line of at most `max` characters, for messages: whitespace folded, an ellipsis when cut. */
export function clip(text: string, max = 60): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? one.slice(0, max - 1) + '…' : one;
}
