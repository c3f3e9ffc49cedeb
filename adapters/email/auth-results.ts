/**
 * A strict parser of Authentication-Results values (RFC 8601): comments (which nest) and quoted strings are read as
 * such, so a `;` inside them never starts a result, and anything left over that the grammar has no place for makes
 * the whole value unreadable. Microsoft 365 writes the same results without an authserv-id and with its own extra
 * attributes (`action=`, `compauth=… reason=`); `microsoft365` reads that form.
 */

/** One method's result in a header: `dkim=pass header.d=example.com`. */
export interface MethodResult {
  method: string;
  result: string;
  props: Record<string, string>;
}

/** A parsed header: its authserv-id ('' in Microsoft's form) and its results. */
export interface AuthResults {
  authservId: string;
  results: MethodResult[];
}

/** How a receiving server writes its headers: RFC 8601, or Microsoft 365's form without an authserv-id. */
export type AuthResultsFormat = 'rfc8601' | 'microsoft365';

/** Thrown for a value the grammar does not allow; `code` is stable. */
export class AuthResultsSyntaxError extends Error {
  override name = 'AuthResultsSyntaxError';
  readonly code = 'auth_results_syntax';
}

type Token = { kind: 'word' | 'quoted'; text: string } | { kind: ';' | '=' };

const KEYWORD = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i;
const PROPERTY = /^([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)\.([a-z0-9](?:[a-z0-9_.-]*[a-z0-9])?)$/i;

/** Reads a comment at `i` (just past its `(`), nested ones included; returns the index past its `)`. */
function skipComment(value: string, i: number): number {
  let depth = 1;
  for (; i < value.length; i++) {
    const ch = value[i];
    if (ch === '\\') i++;
    else if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) return i + 1;
  }
  throw new AuthResultsSyntaxError('a comment is not closed');
}

/** Reads a quoted string at `i` (just past its `"`); returns its content and the index past the closing quote. */
function readQuoted(value: string, i: number): { text: string; end: number } {
  let text = '';
  for (; i < value.length; i++) {
    const ch = value[i];
    if (ch === '"') return { text, end: i + 1 };
    if (ch === '\\') {
      if (i + 1 >= value.length) break;
      text += value[++i];
    } else text += ch;
  }
  throw new AuthResultsSyntaxError('a quoted string is not closed');
}

/** Splits a value into words, quoted strings, `;` and `=`, dropping white space and comments. */
export function tokenize(value: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < value.length) {
    const ch = value[i];
    if (/\s/.test(ch)) i++;
    else if (ch === '(') i = skipComment(value, i + 1);
    else if (ch === ')') throw new AuthResultsSyntaxError('a ")" without its "("');
    else if (ch === ';' || ch === '=') tokens.push({ kind: ch }), i++;
    else if (ch === '"') {
      const quoted = readQuoted(value, i + 1);
      tokens.push({ kind: 'quoted', text: quoted.text });
      i = quoted.end;
    } else {
      let end = i;
      while (end < value.length && !/[\s()";=\\]/.test(value[end])) end++;
      if (end === i) throw new AuthResultsSyntaxError(`an unexpected ${JSON.stringify(ch)}`);
      tokens.push({ kind: 'word', text: value.slice(i, end) });
      i = end;
    }
  }
  return tokens;
}

/** A cursor over the tokens of one value. */
class Reader {
  private at = 0;
  constructor(private readonly tokens: Token[]) {}

  peek(offset = 0): Token | undefined {
    return this.tokens[this.at + offset];
  }

  done(): boolean {
    return this.at >= this.tokens.length;
  }

  /** The text of the token at `offset` when it is a word. */
  wordAt(offset = 0): string | undefined {
    const token = this.peek(offset);
    return token?.kind === 'word' ? token.text : undefined;
  }

  /** Takes a word and returns its text. */
  word(): string {
    return (this.take('word') as { text: string }).text;
  }

  take(kind: Token['kind']): Token {
    const token = this.tokens[this.at];
    if (token?.kind !== kind)
      throw new AuthResultsSyntaxError(
        `expected ${kind === 'word' ? 'a word' : `"${kind}"`}, found ${token ? describe(token) : 'the end'}`,
      );
    this.at++;
    return token;
  }

  /** A word or quoted string (a `value` of the grammar). */
  value(): string {
    const token = this.peek();
    if (token?.kind === 'word' || token?.kind === 'quoted') {
      this.at++;
      return token.text;
    }
    throw new AuthResultsSyntaxError(`expected a value, found ${token ? describe(token) : 'the end'}`);
  }
}

/** A token as an error message shows it. */
function describe(token: Token): string {
  return token.kind === 'word' || token.kind === 'quoted' ? JSON.stringify(token.text.slice(0, 40)) : `"${token.kind}"`;
}

/** `method[/version]=result` */
function readMethod(r: Reader): { method: string; result: string } {
  const name = r.word();
  const [method, version, ...rest] = name.split('/');
  if (!KEYWORD.test(method) || rest.length || (version !== undefined && !/^\d+$/.test(version)))
    throw new AuthResultsSyntaxError(`not a method: ${JSON.stringify(name.slice(0, 40))}`);
  r.take('=');
  const result = r.word();
  if (!KEYWORD.test(result)) throw new AuthResultsSyntaxError(`not a result: ${JSON.stringify(result.slice(0, 40))}`);
  return { method: method.toLowerCase(), result: result.toLowerCase() };
}

/** A property value: a value, or `"local part"@domain` (a quoted local part followed by its domain). */
function readPropertyValue(r: Reader): string {
  const quotedLocalPart = r.peek()?.kind === 'quoted';
  const first = r.value();
  const next = r.peek();
  return quotedLocalPart && next?.kind === 'word' && next.text.startsWith('@') ? first + r.value() : first;
}

/** The attributes after a method's result: `reason=…` and `ptype.property=value`; Microsoft's own ones when told. */
function readProps(r: Reader, format: AuthResultsFormat): Record<string, string> {
  const props: Record<string, string> = {};
  while (r.wordAt() !== undefined) {
    const name = r.word().toLowerCase();
    const known = name === 'reason' || PROPERTY.test(name) || (format === 'microsoft365' && name === 'action');
    if (!known) throw new AuthResultsSyntaxError(`not a property: ${JSON.stringify(name.slice(0, 40))}`);
    if (name in props) throw new AuthResultsSyntaxError(`${name} given twice`);
    r.take('=');
    props[name] = readPropertyValue(r).toLowerCase();
  }
  return props;
}

/** `; method=result props…`, repeated; a `;` at the very end (as OpenDKIM and Microsoft write) is allowed. */
function readResults(r: Reader, format: AuthResultsFormat): MethodResult[] {
  const results: MethodResult[] = [];
  while (!r.done()) {
    if (results.length > 0 || format === 'rfc8601') r.take(';');
    if (r.done() && (results.length > 0 || format === 'rfc8601')) break;
    if (results.length === 0 && r.wordAt()?.toLowerCase() === 'none' && r.peek(1) === undefined) {
      r.word();
      break;
    }
    const { method, result } = readMethod(r);
    results.push({ method, result, props: readProps(r, format) });
    if (r.peek() && r.peek()?.kind !== ';')
      throw new AuthResultsSyntaxError(`unexpected ${describe(r.peek()!)} after the ${method} result`);
  }
  return results;
}

/** The authserv-id a value names (lower-case), read past leading comments without parsing the rest; '' when unreadable. */
export function leadingAuthservId(value: string): string {
  let i = 0;
  try {
    while (i < value.length && (/\s/.test(value[i]) || value[i] === '(')) i = value[i] === '(' ? skipComment(value, i + 1) : i + 1;
    if (value[i] === '"') return readQuoted(value, i + 1).text.toLowerCase();
  } catch {
    return '';
  }
  return /^[^\s;()"=\\]*/.exec(value.slice(i))![0].toLowerCase();
}

/** Parses one unfolded Authentication-Results value; throws AuthResultsSyntaxError for anything the grammar rejects. */
export function parseAuthResults(value: string, format: AuthResultsFormat = 'rfc8601'): AuthResults {
  const r = new Reader(tokenize(value));
  if (format === 'microsoft365') {
    if (r.done()) throw new AuthResultsSyntaxError('an empty header');
    return { authservId: '', results: readResults(r, format) };
  }
  const authservId = r.value().toLowerCase();
  if (/^\d+$/.test(r.wordAt() ?? '')) r.word(); // authres-version
  if (r.done()) throw new AuthResultsSyntaxError('no result after the authserv-id');
  return { authservId, results: readResults(r, format) };
}
