import type { HttpPart, Word } from '../action.js';

/**
 * Builds the part for one HTTP request. The URL is parsed with the WHATWG URL parser, which also
 * folds the numeric spellings of IPv4 addresses (`http://2852039166/` → `169.254.169.254`), so
 * host rules see the address the request would reach.
 *
 * @param method  HTTP method; upper-cased. `?` when it comes from an expansion.
 * @param url     absolute URL, or (with `lenient`) a curl-style one without a scheme; null when unknown.
 * @param lenient accept `example.com/x` as `http://example.com/x`, as curl and wget do.
 * @returns a part whose `host`, `url` and `path` are null when the URL is unknown or unparseable.
 */
export function httpPart(method: string, url: Word, origin: string, lenient = false): HttpPart {
  const part: HttpPart = { kind: 'http', method: method.toUpperCase(), url, scheme: null, host: null, port: null, path: null, origin, tags: [] };
  if (url === null) return part;
  let parsed: URL;
  try {
    parsed = new URL(lenient && !/^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? `http://${url}` : url);
  } catch {
    return part;
  }
  part.scheme = parsed.protocol.replace(/:$/, '');
  part.host = parsed.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  part.port = parsed.port === '' ? null : Number(parsed.port);
  part.path = decodeURIComponentSafe(parsed.pathname);
  part.url = parsed.href;
  return part;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
