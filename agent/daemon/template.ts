/**
 * Templates run through the shell, like the original agent's, but the sender's words never become shell syntax:
 * each `%s` of the owner's template becomes a reference to a positional parameter, and the words are passed as
 * those parameters (`sh -c '<script>' skadi word1 word2 …`), so the shell sees them only as values.
 */

/** The template text cannot be turned into a script (an unterminated quote); the message says where. */
export class TemplateSyntaxError extends Error {
  override name = 'TemplateSyntaxError';
}

/** A template ready to run: the shell script and how many words it takes. */
export interface CompiledTemplate {
  script: string;
  placeholders: number;
}

type Quoting = 'none' | 'single' | 'double';

/** How the n-th placeholder is written in each quoting context, so that the word expands as exactly one value. */
function parameterReference(n: number, quoting: Quoting): string {
  const plain = n < 10 ? `$${n}` : `\${${n}}`;
  if (quoting === 'double') return `\${${n}}`;
  if (quoting === 'single') return `'"${plain}"'`;
  return `"${plain}"`;
}

/**
 * Rewrites a template: `%s` becomes `"$1"` unquoted, `${1}` inside double quotes, `'"$1"'` inside single quotes
 * (numbered left to right); `%%` becomes a literal `%`; everything else is the owner's shell text, kept as written.
 */
export function compileTemplate(temp: string): CompiledTemplate {
  let script = '';
  let quoting: Quoting = 'none';
  let placeholders = 0;
  for (let i = 0; i < temp.length; i++) {
    const ch = temp[i];
    if (ch === '%' && temp[i + 1] === 's') {
      script += parameterReference(++placeholders, quoting);
      i++;
    } else if (ch === '%' && temp[i + 1] === '%') {
      script += '%';
      i++;
    } else if (ch === '\\' && quoting !== 'single' && i + 1 < temp.length) {
      script += ch + temp[++i];
    } else {
      if (ch === "'" && quoting !== 'double') quoting = quoting === 'single' ? 'none' : 'single';
      else if (ch === '"' && quoting !== 'single') quoting = quoting === 'double' ? 'none' : 'double';
      script += ch;
    }
  }
  if (quoting !== 'none') throw new TemplateSyntaxError(`unterminated ${quoting} quote`);
  return { script, placeholders };
}

/** The usage line of a template: its name and one `<word>` per placeholder. */
export function templateUsage(name: string, placeholders: number): string {
  return [name, ...Array.from({ length: placeholders }, () => '<word>')].join(' ');
}
