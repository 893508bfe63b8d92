/** One line of at most `max` characters, for messages: whitespace folded, an ellipsis when cut. */
export function clip(text: string, max = 60): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? one.slice(0, max - 1) + '…' : one;
}
