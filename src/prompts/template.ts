/**
 * Prompt templates: literal text with `{name}` references to slots or slot vars.
 * `{{` and `}}` stand for literal braces. Parsed once; rendered millions of times.
 */
export interface Template {
  text: string;
  /** Alternating literals and references: literal, ref, literal, ref, ..., literal (always odd length). */
  parts: string[];
  refs: string[];
}

/** Parse a template; returns an error string (what is wrong, where) instead of throwing. */
export function parseTemplate(text: string): Template | string {
  const parts: string[] = [];
  const refs: string[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{' && text[i + 1] === '{') {
      literal += '{';
      i++;
    } else if (c === '}' && text[i + 1] === '}') {
      literal += '}';
      i++;
    } else if (c === '{') {
      const close = text.indexOf('}', i);
      const name = close < 0 ? '' : text.slice(i + 1, close);
      if (!/^[a-z][a-z0-9_]*$/.test(name)) {
        return `bad reference at character ${i + 1} of "${text}": expected {slot_name} (lowercase letters, digits, _), or {{ for a literal brace`;
      }
      parts.push(literal, name);
      refs.push(name);
      literal = '';
      i = close;
    } else if (c === '}') {
      return `unmatched "}" at character ${i + 1} of "${text}" (write }} for a literal brace)`;
    } else {
      literal += c;
    }
  }
  parts.push(literal);
  return { text, parts, refs: [...new Set(refs)] };
}
