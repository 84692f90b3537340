import { UserError } from '../errors.ts';

/**
 * A user's `--where` condition, parsed and written back as SQL that can only test values of one view's
 * columns. Hand-written (a small recursive-descent parser) because the condition must never reach
 * DuckDB as text: pasted, `true) UNION ALL (SELECT …` rewrites the query and a subquery can call
 * read_text('/etc/passwd'); DuckDB's own parser (json_serialize_sql) accepts all of SQL and would leave
 * us walking its whole AST to find what to forbid, and no kept npm SQL parser speaks DuckDB's dialect.
 * Allowed: column names (bare or "quoted"), string / number / TRUE / FALSE / NULL literals, = <> != < <=
 * > >=, + - * / % ||, AND OR NOT, [NOT] IN (...), [NOT] BETWEEN … AND …, [NOT] LIKE / ILIKE, IS [NOT]
 * NULL / TRUE / FALSE, parentheses and a few pure functions (FUNCTIONS). Everything else (other
 * functions, subqueries, casts, semicolons, comments) is a UserError naming the position.
 */

/** Pure scalar functions a condition may call: they read only their arguments. */
const FUNCTIONS = ['json_extract_string', 'lower', 'upper', 'length', 'abs', 'round', 'coalesce'];

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'between', 'like', 'ilike', 'is', 'null', 'true', 'false', 'select', 'from', 'union', 'case', 'cast', 'exists']);

type Token =
  | { kind: 'ident'; text: string; name: string; quoted: boolean; pos: number }
  | { kind: 'string'; text: string; value: string; pos: number }
  | { kind: 'number'; text: string; pos: number }
  | { kind: 'op'; text: string; pos: number }
  | { kind: 'end'; text: string; pos: number };

type Node =
  | { kind: 'column'; name: string }
  | { kind: 'literal'; sql: string }
  | { kind: 'unary'; op: 'NOT' | '-' | '+'; arg: Node }
  | { kind: 'binary'; op: string; left: Node; right: Node }
  | { kind: 'in'; not: boolean; arg: Node; list: Node[] }
  | { kind: 'between'; not: boolean; arg: Node; low: Node; high: Node }
  | { kind: 'is'; not: boolean; arg: Node; what: 'NULL' | 'TRUE' | 'FALSE' }
  | { kind: 'call'; name: string; args: Node[] };

export interface PredicateContext {
  /** The option the text came from, for messages (e.g. "--where"). */
  option: string;
  /** The view the condition is over, for messages (e.g. "manifest"). */
  view: string;
  /** The view's column names, as DuckDB reports them. */
  columns: readonly string[];
}

/** The condition `text` as safe SQL over `context.columns` (identifiers quoted, literals escaped). */
export function predicateSql(text: string, context: PredicateContext): string {
  const fail = (message: string): never => {
    throw new UserError(`${context.option} ${JSON.stringify(text)}: ${message}`);
  };
  if (text.trim() === '') throw new UserError(`${context.option} is empty: expected a condition over the ${context.view} columns, e.g. "category = 'style' AND NOT accepted"`);
  const tokens = tokenize(text, fail);
  const parser = new Parser(tokens, context, fail);
  const node = parser.parse();
  return render(node);
}

const OPERATORS = ['<>', '!=', '<=', '>=', '||', '=', '<', '>', '+', '-', '*', '/', '%', '(', ')', ','];

function tokenize(text: string, fail: (m: string) => never): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const at = (p: number) => `at position ${p + 1}`;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (text.startsWith('--', i) || text.startsWith('/*', i)) fail(`syntax error ${at(i)}: comments are not allowed in a condition`);
    if (c === ';') fail(`syntax error ${at(i)}: a condition is one expression; ";" is not allowed`);
    if (c === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) fail(`syntax error ${at(start)}: the string is not closed; expected a closing '`);
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i++];
      }
      tokens.push({ kind: 'string', text: text.slice(start, i), value, pos: start });
      continue;
    }
    if (c === '"') {
      let name = '';
      i++;
      for (;;) {
        if (i >= text.length) fail(`syntax error ${at(start)}: the quoted column name is not closed; expected a closing "`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            name += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        name += text[i++];
      }
      tokens.push({ kind: 'ident', text: text.slice(start, i), name, quoted: true, pos: start });
      continue;
    }
    const number = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(text.slice(i));
    if (number) {
      i += number[0].length;
      if (i < text.length && /[A-Za-z_]/.test(text[i])) fail(`syntax error ${at(start)}: expected a number, got ${JSON.stringify(text.slice(start, i + 1))}`);
      tokens.push({ kind: 'number', text: number[0], pos: start });
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (word) {
      i += word[0].length;
      tokens.push({ kind: 'ident', text: word[0], name: word[0], quoted: false, pos: start });
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (!op) fail(`syntax error ${at(i)}: unexpected character ${JSON.stringify(c)}`);
    i += op!.length;
    tokens.push({ kind: 'op', text: op!, pos: start });
  }
  tokens.push({ kind: 'end', text: 'the end', pos: text.length });
  return tokens;
}

/** Deeper nesting than this is refused: the parser recurses, and no real condition comes close. */
const MAX_DEPTH = 100;

class Parser {
  private i = 0;
  private depth = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly context: PredicateContext,
    private readonly fail: (m: string) => never,
  ) {}

  parse(): Node {
    const node = this.or();
    const t = this.peek();
    if (t.kind !== 'end') this.expected('AND, OR or the end of the condition');
    return node;
  }

  private peek(): Token {
    return this.tokens[this.i];
  }

  private next(): Token {
    return this.tokens[this.i++];
  }

  /** The next token is keyword `word` (bare, any case): consume it. */
  private keyword(word: string): boolean {
    const t = this.peek();
    if (t.kind === 'ident' && !t.quoted && t.name.toLowerCase() === word) {
      this.i++;
      return true;
    }
    return false;
  }

  private op(text: string): boolean {
    const t = this.peek();
    if (t.kind === 'op' && t.text === text) {
      this.i++;
      return true;
    }
    return false;
  }

  private expect(text: string, what: string): void {
    if (!this.op(text)) this.expected(what);
  }

  private expected(what: string): never {
    const t = this.peek();
    return this.fail(`syntax error at position ${t.pos + 1}: expected ${what}, got ${t.kind === 'end' ? 'the end' : JSON.stringify(t.text)}`);
  }

  private or(): Node {
    let left = this.and();
    while (this.keyword('or')) left = { kind: 'binary', op: 'OR', left, right: this.and() };
    return left;
  }

  private and(): Node {
    let left = this.not();
    while (this.keyword('and')) left = { kind: 'binary', op: 'AND', left, right: this.not() };
    return left;
  }

  private not(): Node {
    if (this.keyword('not')) return { kind: 'unary', op: 'NOT', arg: this.nested(() => this.not()) };
    return this.comparison();
  }

  private nested(parse: () => Node): Node {
    if (++this.depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels at position ${this.peek().pos + 1}`);
    const node = parse();
    this.depth--;
    return node;
  }

  private comparison(): Node {
    const arg = this.additive();
    const t = this.peek();
    if (t.kind === 'op' && ['=', '<>', '!=', '<', '<=', '>', '>='].includes(t.text)) {
      this.i++;
      return { kind: 'binary', op: t.text === '!=' ? '<>' : t.text, left: arg, right: this.additive() };
    }
    if (this.keyword('is')) {
      const not = this.keyword('not');
      for (const what of ['NULL', 'TRUE', 'FALSE'] as const) if (this.keyword(what.toLowerCase())) return { kind: 'is', not, arg, what };
      return this.expected('NULL, TRUE or FALSE after IS');
    }
    const not = this.keyword('not');
    if (this.keyword('in')) {
      this.expect('(', '"(" after IN');
      const list = [this.additive()];
      while (this.op(',')) list.push(this.additive());
      this.expect(')', '"," or ")" in the IN list');
      return { kind: 'in', not, arg, list };
    }
    if (this.keyword('between')) {
      const low = this.additive();
      if (!this.keyword('and')) this.expected('AND after BETWEEN …');
      return { kind: 'between', not, arg, low, high: this.additive() };
    }
    for (const op of ['like', 'ilike']) {
      if (this.keyword(op)) {
        const right: Node = { kind: 'binary', op: op.toUpperCase(), left: arg, right: this.additive() };
        return not ? { kind: 'unary', op: 'NOT', arg: right } : right;
      }
    }
    if (not) this.expected('IN, BETWEEN, LIKE or ILIKE after NOT');
    return arg;
  }

  private additive(): Node {
    let left = this.multiplicative();
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'op' || !['+', '-', '||'].includes(t.text)) return left;
      this.i++;
      left = { kind: 'binary', op: t.text, left, right: this.multiplicative() };
    }
  }

  private multiplicative(): Node {
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'op' || !['*', '/', '%'].includes(t.text)) return left;
      this.i++;
      left = { kind: 'binary', op: t.text, left, right: this.unary() };
    }
  }

  private unary(): Node {
    if (this.op('-')) return { kind: 'unary', op: '-', arg: this.nested(() => this.unary()) };
    if (this.op('+')) return { kind: 'unary', op: '+', arg: this.nested(() => this.unary()) };
    return this.primary();
  }

  private primary(): Node {
    const t = this.peek();
    if (t.kind === 'string') {
      this.i++;
      return { kind: 'literal', sql: `'${t.value.replace(/'/g, "''")}'` };
    }
    if (t.kind === 'number') {
      this.i++;
      return { kind: 'literal', sql: t.text };
    }
    if (t.kind === 'op' && t.text === '(') {
      this.i++;
      const inner = this.nested(() => this.or());
      this.expect(')', '")"');
      return inner;
    }
    if (t.kind !== 'ident') return this.expected('a column, a value or "("');
    const lower = t.name.toLowerCase();
    if (!t.quoted && ['null', 'true', 'false'].includes(lower)) {
      this.i++;
      return { kind: 'literal', sql: lower.toUpperCase() };
    }
    if (!t.quoted && lower === 'select') this.fail(`subqueries are not allowed (position ${t.pos + 1}); a condition tests the ${this.context.view} columns only`);
    if (!t.quoted && KEYWORDS.has(lower)) return this.expected('a column, a value or "("');
    if (!t.quoted && this.tokens[this.i + 1]?.text === '(') {
      if (!FUNCTIONS.includes(lower)) this.fail(`function ${t.name}() at position ${t.pos + 1} is not allowed; a condition may call only ${FUNCTIONS.join(', ')}`);
      this.i += 2;
      const args = [this.nested(() => this.additive())];
      while (this.op(',')) args.push(this.nested(() => this.additive()));
      this.expect(')', '"," or ")" after the function\'s arguments');
      return { kind: 'call', name: lower, args };
    }
    this.i++;
    // DuckDB matches identifiers case-insensitively; the column's own spelling goes into the SQL.
    const column = this.context.columns.find((c) => c === t.name) ?? this.context.columns.find((c) => c.toLowerCase() === lower);
    if (column === undefined) this.fail(`unknown column ${t.name} at position ${t.pos + 1} (${this.context.view} columns: ${this.context.columns.join(', ')})`);
    return { kind: 'column', name: column! };
  }
}

/** Every operation in parentheses: the SQL means exactly the tree, whatever DuckDB's precedences. */
function render(node: Node): string {
  switch (node.kind) {
    case 'column':
      return `"${node.name.replace(/"/g, '""')}"`;
    case 'literal':
      return node.sql;
    case 'unary':
      return `(${node.op}${node.op === 'NOT' ? ' ' : ''}${render(node.arg)})`;
    case 'binary':
      return `(${render(node.left)} ${node.op} ${render(node.right)})`;
    case 'in':
      return `(${render(node.arg)}${node.not ? ' NOT' : ''} IN (${node.list.map(render).join(', ')}))`;
    case 'between':
      return `(${render(node.arg)}${node.not ? ' NOT' : ''} BETWEEN ${render(node.low)} AND ${render(node.high)})`;
    case 'is':
      return `(${render(node.arg)} IS${node.not ? ' NOT' : ''} ${node.what})`;
    case 'call':
      return `${node.name}(${node.args.map(render).join(', ')})`;
  }
}
