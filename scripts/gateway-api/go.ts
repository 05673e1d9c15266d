/**
 * Enough of Go to read the Gateway API conformance tests: a tokenizer (with Go's automatic
 * semicolons) and a parser for the declarations, statements and expressions the tests are made
 * of (composite literals, calls, selectors, closures, for/range, if). ./transcribe.ts then works
 * out the steps each test takes. What it cannot parse is reported, not guessed.
 */

export type Expr =
  | { k: 'ident'; name: string }
  | { k: 'lit'; value: string | number | boolean }
  | { k: 'sel'; x: Expr; name: string }
  | { k: 'call'; fn: Expr; args: Expr[]; spread: boolean }
  | { k: 'index'; x: Expr; index: Expr }
  | { k: 'slice'; x: Expr }
  | { k: 'composite'; type: string; elts: { key?: Expr; value: Expr }[] }
  | { k: 'unary'; op: string; x: Expr }
  | { k: 'binary'; op: string; x: Expr; y: Expr }
  | { k: 'func'; params: string[]; body: Stmt[] }
  | { k: 'typeexpr'; type: string };

export type Stmt =
  | { k: 'assign'; lhs: Expr[]; rhs: Expr[]; op: string }
  | { k: 'var'; names: string[]; values: Expr[] }
  | { k: 'expr'; x: Expr }
  | { k: 'range'; key?: string; value?: string; x: Expr; body: Stmt[] }
  | { k: 'for'; body: Stmt[]; text: string }
  | { k: 'switch'; tag?: Expr; cases: { values?: Expr[]; body: Stmt[] }[]; text: string }
  | { k: 'if'; cond: Expr | undefined; init?: Stmt; body: Stmt[]; else?: Stmt[] }
  | { k: 'block'; body: Stmt[] }
  | { k: 'return'; values: Expr[] }
  | { k: 'defer'; x: Expr }
  | { k: 'other'; text: string };

/** A function of the file: its parameters' names, its named results' (none when unnamed), its body. */
export interface GoFunc {
  params: string[];
  results: string[];
  body: Stmt[];
}

interface Token {
  t: 'ident' | 'int' | 'float' | 'string' | 'char' | 'op' | ';' | 'eof';
  v: string;
  pos: number;
}

const KEYWORDS_ENDING = new Set(['break', 'continue', 'fallthrough', 'return']);

/** Go's tokens, with a `;` where Go inserts one at the end of a line. */
export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const last = () => out[out.length - 1];
  const endsStatement = () => {
    const l = last();
    if (!l) return false;
    if (l.t === 'ident') return true;
    if (l.t === 'int' || l.t === 'float' || l.t === 'string' || l.t === 'char') return true;
    return l.t === 'op' && [')', ']', '}', '++', '--'].includes(l.v);
  };
  const ops = ['<<=', '>>=', '&^=', '...', '&&', '||', '<-', '++', '--', '==', '!=', '<=', '>=', ':=', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '<<', '>>', '&^'];
  while (i < src.length) {
    const c = src[i];
    if (c === '\n') {
      if (endsStatement() || (last()?.t === 'ident' && KEYWORDS_ENDING.has(last()!.v))) out.push({ t: ';', v: '\n', pos: i });
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (src.startsWith('//', i)) {
      const end = src.indexOf('\n', i);
      i = end < 0 ? src.length : end;
      continue;
    }
    if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      const comment = src.slice(i, end < 0 ? src.length : end + 2);
      if (comment.includes('\n') && endsStatement()) out.push({ t: ';', v: '\n', pos: i });
      i = end < 0 ? src.length : end + 2;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[A-Za-z0-9_]/.test(src[j])) j++;
      out.push({ t: 'ident', v: src.slice(i, j), pos: i });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      let j = i;
      while (j < src.length && /[0-9a-fA-FxX_.eE]/.test(src[j])) j++;
      const text = src.slice(i, j).replace(/_/g, '');
      out.push({ t: /[.eE]/.test(text) && !/^0[xX]/.test(text) ? 'float' : 'int', v: text, pos: i });
      i = j;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let value = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\') {
          const e = src[j + 1];
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\', "'": "'", a: '\x07', b: '\b', f: '\f', v: '\v' };
          if (map[e] !== undefined) {
            value += map[e];
            j += 2;
          } else if (e === 'x') {
            value += String.fromCharCode(parseInt(src.slice(j + 2, j + 4), 16));
            j += 4;
          } else if (e === 'u') {
            value += String.fromCharCode(parseInt(src.slice(j + 2, j + 6), 16));
            j += 6;
          } else {
            value += e;
            j += 2;
          }
        } else value += src[j++];
      }
      out.push({ t: 'string', v: value, pos: i });
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const end = src.indexOf('`', i + 1);
      out.push({ t: 'string', v: src.slice(i + 1, end), pos: i });
      i = end + 1;
      continue;
    }
    if (c === "'") {
      let j = i + 1;
      while (src[j] !== "'") j += src[j] === '\\' ? 2 : 1;
      out.push({ t: 'char', v: src.slice(i + 1, j), pos: i });
      i = j + 1;
      continue;
    }
    const op = ops.find((o) => src.startsWith(o, i)) ?? c;
    out.push({ t: 'op', v: op, pos: i });
    i += op.length;
  }
  if (endsStatement()) out.push({ t: ';', v: '\n', pos: src.length });
  out.push({ t: 'eof', v: '', pos: src.length });
  return out;
}

export class GoParseError extends Error {}

/** A recursive-descent parser over the tokens of one file. */
export class Parser {
  i = 0;
  constructor(readonly toks: Token[], readonly src: string) {}

  peek(n = 0): Token {
    return this.toks[Math.min(this.i + n, this.toks.length - 1)];
  }
  next(): Token {
    return this.toks[this.i++];
  }
  is(v: string, n = 0): boolean {
    const t = this.peek(n);
    return (t.t === 'op' || t.t === 'ident' || t.t === ';') && t.v === v;
  }
  accept(v: string): boolean {
    if (this.is(v) || (v === ';' && this.peek().t === ';')) {
      this.i++;
      return true;
    }
    return false;
  }
  expect(v: string): Token {
    const t = this.next();
    if (!((t.t === 'op' || t.t === 'ident') && t.v === v) && !(v === ';' && t.t === ';')) {
      throw new GoParseError(`expected ${JSON.stringify(v)}, found ${JSON.stringify(t.v)} at line ${this.line(t.pos)}`);
    }
    return t;
  }
  line(pos: number): number {
    return this.src.slice(0, pos).split('\n').length;
  }
  skipSemis(): void {
    while (this.peek().t === ';') this.i++;
  }

  // === types ===

  /** A type, as text (`[]http.ExpectedResponse`, `map[string]string`, `*roundtripper.RedirectRequest`). */
  type(): string {
    const t = this.peek();
    if (this.is('*')) {
      this.next();
      return '*' + this.type();
    }
    if (this.is('[')) {
      this.next();
      let len = '';
      while (!this.is(']')) len += this.next().v;
      this.expect(']');
      return `[${len}]` + this.type();
    }
    if (this.is('map')) {
      this.next();
      this.expect('[');
      const k = this.type();
      this.expect(']');
      return `map[${k}]${this.type()}`;
    }
    if (this.is('func')) {
      this.next();
      this.skipBalanced('(', ')');
      if (this.is('(')) this.skipBalanced('(', ')');
      else if (!this.is('{') && !this.is(',') && !this.is(')') && this.peek().t !== ';' && !this.is('=')) this.type();
      return 'func';
    }
    if (this.is('struct') || this.is('interface')) {
      this.next();
      this.skipBalanced('{', '}');
      return t.v;
    }
    if (this.is('chan')) {
      this.next();
      return 'chan ' + this.type();
    }
    if (t.t !== 'ident') throw new GoParseError(`expected a type at line ${this.line(t.pos)}, found ${JSON.stringify(t.v)}`);
    this.next();
    let name = t.v;
    if (this.is('.') && this.peek(1).t === 'ident') {
      this.next();
      name += '.' + this.next().v;
    }
    if (this.is('[') && name !== 'map') {
      // generic instantiation, e.g. sets.Set[string]
      this.skipBalanced('[', ']');
    }
    return name;
  }

  skipBalanced(open: string, close: string): string {
    const start = this.peek().pos;
    this.expect(open);
    let depth = 1;
    while (depth > 0) {
      const t = this.next();
      if (t.t === 'eof') throw new GoParseError(`unbalanced ${open}`);
      if (t.t === 'op' && t.v === open) depth++;
      else if (t.t === 'op' && t.v === close) depth--;
    }
    return this.src.slice(start, this.toks[this.i - 1].pos + 1);
  }

  // === expressions ===

  expr(noLit = false): Expr {
    return this.binary(0, noLit);
  }

  binary(minPrec: number, noLit: boolean): Expr {
    const prec: Record<string, number> = { '||': 1, '&&': 2, '==': 3, '!=': 3, '<': 3, '<=': 3, '>': 3, '>=': 3, '+': 4, '-': 4, '|': 4, '^': 4, '*': 5, '/': 5, '%': 5, '<<': 5, '>>': 5, '&': 5, '&^': 5 };
    let x = this.unary(noLit);
    for (;;) {
      const t = this.peek();
      const p = t.t === 'op' ? prec[t.v] : undefined;
      if (p === undefined || p <= minPrec) return x;
      this.next();
      const y = this.binary(p, noLit);
      x = { k: 'binary', op: t.v, x, y };
    }
  }

  unary(noLit: boolean): Expr {
    const t = this.peek();
    if (t.t === 'op' && ['!', '-', '+', '&', '*', '^', '<-'].includes(t.v)) {
      this.next();
      return { k: 'unary', op: t.v, x: this.unary(noLit) };
    }
    return this.primary(noLit);
  }

  primary(noLit: boolean, from?: Expr): Expr {
    let x = from ?? this.operand(noLit);
    for (;;) {
      if (this.is('.')) {
        this.next();
        if (this.is('(')) {
          // type assertion x.(T)
          this.skipBalanced('(', ')');
          continue;
        }
        x = { k: 'sel', x, name: this.next().v };
      } else if (this.is('(')) {
        this.next();
        const args: Expr[] = [];
        let spread = false;
        this.skipSemis();
        while (!this.is(')')) {
          args.push(this.argument());
          if (this.accept('...')) spread = true;
          if (!this.accept(',')) break;
          this.skipSemis();
        }
        this.skipSemis();
        this.expect(')');
        x = { k: 'call', fn: x, args, spread };
      } else if (this.is('[')) {
        this.next();
        if (this.is(':')) {
          while (!this.is(']')) this.next();
          this.expect(']');
          x = { k: 'slice', x };
          continue;
        }
        const index = this.expr();
        if (this.is(':')) {
          while (!this.is(']')) this.next();
          this.expect(']');
          x = { k: 'slice', x };
          continue;
        }
        this.expect(']');
        x = { k: 'index', x, index };
      } else if (this.is('{') && !noLit && isTypeLike(x)) {
        x = this.compositeBody(typeText(x));
      } else return x;
    }
  }

  /** A call argument: an expression, or a type (make([]T, n), new(T)). */
  argument(): Expr {
    if (this.is('[') || this.is('map') || this.is('chan') || (this.is('*') && this.peek(1).t === 'ident' && (this.is(')', 2) || this.is('.', 2)))) {
      const save = this.i;
      try {
        const type = this.type();
        if (this.is('{')) return this.primary(false, this.compositeBody(type));
        // a conversion, []byte(s)
        return this.primary(false, { k: 'typeexpr', type });
      } catch {
        this.i = save;
      }
    }
    return this.expr();
  }

  operand(noLit: boolean): Expr {
    const t = this.peek();
    if (t.t === 'int' || t.t === 'float') {
      this.next();
      return { k: 'lit', value: Number(t.v) };
    }
    if (t.t === 'string') {
      this.next();
      return { k: 'lit', value: t.v };
    }
    if (t.t === 'char') {
      this.next();
      return { k: 'lit', value: t.v };
    }
    if (this.is('(')) {
      this.next();
      const x = this.expr();
      this.expect(')');
      return x;
    }
    if (this.is('func')) {
      this.next();
      const params = this.params();
      // results
      if (this.is('(')) this.skipBalanced('(', ')');
      else if (!this.is('{')) this.type();
      const body = this.block();
      return { k: 'func', params, body };
    }
    if (this.is('[') || this.is('map')) {
      const type = this.type();
      if (this.is('{')) return this.compositeBody(type);
      return { k: 'typeexpr', type };
    }
    if (this.is('struct')) {
      const type = this.type();
      if (this.is('{')) return this.compositeBody(type);
      return { k: 'typeexpr', type };
    }
    if (t.t === 'ident') {
      this.next();
      if (t.v === 'true' || t.v === 'false') return { k: 'lit', value: t.v === 'true' };
      return { k: 'ident', name: t.v };
    }
    if (this.is('{') && !noLit) return this.compositeBody('');
    throw new GoParseError(`unexpected ${JSON.stringify(t.v)} at line ${this.line(t.pos)}`);
  }

  params(): string[] {
    const names: string[] = [];
    this.expect('(');
    while (!this.is(')')) {
      const t = this.next();
      if (t.t === 'ident' && (this.is(',') || this.peek().t === 'ident' || this.is('*') || this.is('[') || this.is('...') || this.is('func') || this.is('map'))) {
        names.push(t.v);
        if (this.is(',')) {
          this.next();
          continue;
        }
        this.accept('...');
        this.type();
      } else if (t.t === 'op' && t.v === ',') continue;
      else {
        // an unnamed parameter type
        this.i--;
        this.type();
      }
      this.accept(',');
    }
    this.expect(')');
    return names;
  }

  compositeBody(type: string): Expr {
    this.expect('{');
    const elts: { key?: Expr; value: Expr }[] = [];
    this.skipSemis();
    while (!this.is('}')) {
      let first = this.is('{') ? this.compositeBody('') : this.expr();
      let key: Expr | undefined;
      if (this.accept(':')) {
        key = first;
        first = this.is('{') ? this.compositeBody('') : this.expr();
      }
      elts.push({ key, value: first });
      if (!this.accept(',')) {
        this.skipSemis();
        break;
      }
      this.skipSemis();
    }
    this.skipSemis();
    this.expect('}');
    return { k: 'composite', type, elts };
  }

  // === statements ===

  /** A switch's `{ case a, b: ... default: ... }`: each clause's values (none for default) and body. */
  switchCases(): { values?: Expr[]; body: Stmt[] }[] {
    this.expect('{');
    const cases: { values?: Expr[]; body: Stmt[] }[] = [];
    this.skipSemis();
    while (!this.is('}')) {
      let values: Expr[] | undefined;
      if (this.accept('default')) values = undefined;
      else {
        this.expect('case');
        values = [this.expr()];
        while (this.accept(',')) values.push(this.expr());
      }
      this.expect(':');
      const body: Stmt[] = [];
      this.skipSemis();
      while (!this.is('case') && !this.is('default') && !this.is('}')) {
        body.push(this.stmt());
        this.skipSemis();
      }
      cases.push({ ...(values ? { values } : {}), body });
    }
    this.expect('}');
    return cases;
  }

  block(): Stmt[] {
    this.expect('{');
    const out: Stmt[] = [];
    this.skipSemis();
    while (!this.is('}')) {
      out.push(this.stmt());
      this.skipSemis();
    }
    this.expect('}');
    return out;
  }

  stmt(): Stmt {
    const start = this.peek().pos;
    if (this.is('{')) return { k: 'block', body: this.block() };
    if (this.is('var') || this.is('const')) {
      this.next();
      const names: string[] = [];
      const values: Expr[] = [];
      const one = () => {
        const ns = [this.next().v];
        while (this.accept(',')) ns.push(this.next().v);
        if (!this.is('=') && this.peek().t !== ';' && !this.is(')')) this.type();
        if (this.accept('=')) {
          for (let i = 0; i < ns.length; i++) {
            values.push(this.expr());
            this.accept(',');
          }
        } else for (let i = 0; i < ns.length; i++) values.push({ k: 'lit', value: '' });
        names.push(...ns);
      };
      if (this.accept('(')) {
        this.skipSemis();
        while (!this.is(')')) {
          one();
          this.skipSemis();
        }
        this.expect(')');
      } else one();
      return { k: 'var', names, values };
    }
    if (this.is('return')) {
      this.next();
      const values: Expr[] = [];
      while (this.peek().t !== ';' && !this.is('}')) {
        values.push(this.expr());
        if (!this.accept(',')) break;
      }
      return { k: 'return', values };
    }
    if (this.is('if')) return this.ifStmt();
    if (this.is('for')) {
      this.next();
      // for range / for k, v := range x / for i := range x
      const save = this.i;
      let key: string | undefined;
      let value: string | undefined;
      if (this.is('range')) {
        this.next();
        const x = this.expr(true);
        return { k: 'range', x, body: this.block() };
      }
      if (this.peek().t === 'ident' && (this.is(':=', 1) || this.is(',', 1) || this.is('=', 1))) {
        key = this.next().v;
        if (this.accept(',')) value = this.next().v;
        if ((this.accept(':=') || this.accept('=')) && this.accept('range')) {
          const x = this.expr(true);
          return { k: 'range', key, value, x, body: this.block() };
        }
      }
      this.i = save;
      // a three-clause or condition loop: not evaluated; its text is kept for the reason
      while (!this.is('{')) this.next();
      const body = this.block();
      return { k: 'for', body, text: this.src.slice(start, this.toks[this.i - 1].pos + 1) };
    }
    if (this.is('go')) {
      this.next();
      const x = this.expr();
      return { k: 'other', text: 'go statement', ...{ x } };
    }
    if (this.is('switch')) {
      // an expression switch (`switch x { case "a", "b": ...; default: ... }`, or with no tag);
      // a type switch or one with an init statement is kept as text, not evaluated
      const save = this.i;
      this.next();
      try {
        const tag = this.is('{') ? undefined : this.expr(true);
        if (this.is('{')) return { k: 'switch', tag, cases: this.switchCases(), text: this.src.slice(start, this.toks[this.i - 1].pos + 1) };
      } catch (err) {
        if (!(err instanceof GoParseError)) throw err;
      }
      this.i = save;
    }
    if (this.is('switch') || this.is('select') || this.is('goto')) {
      this.next();
      while (!this.is('{') && this.peek().t !== ';') this.next();
      if (this.is('{')) this.skipBalanced('{', '}');
      return { k: 'other', text: this.src.slice(start, this.toks[this.i - 1].pos + 1) };
    }
    if (this.is('defer')) {
      this.next();
      const x = this.expr();
      return { k: 'defer', x };
    }
    if (this.is('break') || this.is('continue')) {
      return { k: 'other', text: this.next().v };
    }
    // simple statement
    const lhs = [this.expr()];
    while (this.accept(',')) lhs.push(this.expr());
    const t = this.peek();
    if (t.t === 'op' && [':=', '=', '+=', '-=', '*=', '/=', '|=', '&='].includes(t.v)) {
      this.next();
      const rhs = [this.expr()];
      while (this.accept(',')) rhs.push(this.expr());
      return { k: 'assign', lhs, rhs, op: t.v };
    }
    if (this.is('++') || this.is('--')) {
      this.next();
      return { k: 'other', text: 'incdec' };
    }
    return { k: 'expr', x: lhs[0] };
  }

  ifStmt(): Stmt {
    this.expect('if');
    let init: Stmt | undefined;
    // `if x := f(); cond {` or `if cond {`
    const save = this.i;
    let cond: Expr | undefined;
    try {
      const first = this.simpleNoLit();
      if (this.accept(';')) {
        init = first;
        cond = this.expr(true);
      } else cond = first.k === 'expr' ? first.x : undefined;
    } catch {
      this.i = save;
      while (!this.is('{')) this.next();
    }
    const body = this.block();
    let otherwise: Stmt[] | undefined;
    if (this.accept('else')) otherwise = this.is('if') ? [this.ifStmt()] : this.block();
    return { k: 'if', cond, init, body, else: otherwise };
  }

  simpleNoLit(): Stmt {
    const lhs = [this.expr(true)];
    while (this.accept(',')) lhs.push(this.expr(true));
    const t = this.peek();
    if (t.t === 'op' && (t.v === ':=' || t.v === '=')) {
      this.next();
      const rhs = [this.expr(true)];
      while (this.accept(',')) rhs.push(this.expr(true));
      return { k: 'assign', lhs, rhs, op: t.v };
    }
    return { k: 'expr', x: lhs[0] };
  }
}

function isTypeLike(x: Expr): boolean {
  return x.k === 'ident' || (x.k === 'sel' && x.x.k === 'ident') || x.k === 'typeexpr';
}

function typeText(x: Expr): string {
  if (x.k === 'ident') return x.name;
  if (x.k === 'sel' && x.x.k === 'ident') return `${x.x.name}.${x.name}`;
  if (x.k === 'typeexpr') return x.type;
  return '';
}

/** A conformance test declared in a file: `var X = suite.ConformanceTest{...}`. */
export interface GoConformanceTest {
  variable: string;
  fields: Map<string, Expr>;
}

/**
 * The ConformanceTest literals of a Go file, and its top-level helper functions (a test body
 * may call them). Each test's fields are kept as expressions.
 */
export function parseSuiteFile(src: string): { tests: GoConformanceTest[]; funcs: Map<string, GoFunc>; vars: Stmt[]; errors: string[]; imports: Map<string, string> } {
  const p = new Parser(tokenize(src), src);
  const tests: GoConformanceTest[] = [];
  /**
   * The file's package names, by the name the file uses: an import renamed in the file
   * (`h "sigs.k8s.io/gateway-api/conformance/utils/http"`) is known by its package's own name.
   */
  const imports = new Map<string, string>();
  /** The file's other package-level `var` and `const` declarations, in order (a test may use them). */
  const vars: Stmt[] = [];
  const funcs = new Map<string, GoFunc>();
  const errors: string[] = [];
  while (p.peek().t !== 'eof') {
    const t = p.peek();
    if (t.t === 'ident' && t.v === 'import') {
      p.next();
      const grouped = p.accept('(');
      do {
        while (p.peek().t === ';') p.next();
        if (p.is(')')) break;
        const alias = p.peek().t === 'ident' ? p.next().v : undefined;
        const path = p.next();
        if (path.t !== 'string') break;
        const name = path.v.replace(/^["`]|["`]$/g, '').split('/').pop()!;
        if (alias && alias !== '_' && alias !== '.') imports.set(alias, name);
      } while (grouped);
      if (grouped) p.accept(')');
      continue;
    }
    if (t.t === 'ident' && (t.v === 'var' || t.v === 'const') && p.peek(1).t === 'ident' && p.is('=', 2)) {
      const variable = p.peek(1).v;
      const save = p.i;
      try {
        p.next();
        p.next();
        p.next();
        const x = p.expr();
        if (x.k === 'composite' && /ConformanceTest$/.test(x.type)) {
          const fields = new Map<string, Expr>();
          for (const e of x.elts) if (e.key?.k === 'ident') fields.set(e.key.name, e.value);
          tests.push({ variable, fields });
        } else vars.push({ k: 'var', names: [variable], values: [x] });
      } catch (err) {
        errors.push(`${variable}: ${(err as Error).message}`);
        p.i = save + 1;
      }
      continue;
    }
    if (t.t === 'ident' && (t.v === 'const' || t.v === 'var') && (p.is('(', 1) || (p.peek(1).t === 'ident' && !p.is('=', 2)))) {
      const save = p.i;
      try {
        const decl = p.stmt();
        if (decl.k === 'var') vars.push(decl);
      } catch {
        p.i = save + 1;
      }
      continue;
    }
    if (t.t === 'ident' && t.v === 'func' && p.peek(1).t === 'ident' && p.is('(', 2)) {
      const name = p.peek(1).v;
      const save = p.i;
      try {
        p.next();
        p.next();
        const params = p.params();
        // named results (`(newAddrs []v1.GatewaySpecAddress)`) are variables a bare return gives back
        const results = p.is('(') ? p.params() : [];
        if (!p.is('{')) p.type();
        funcs.set(name, { params, results, body: p.block() });
      } catch (err) {
        errors.push(`func ${name}: ${(err as Error).message}`);
        p.i = save + 1;
      }
      continue;
    }
    p.next();
  }
  return { tests, funcs, vars, errors, imports };
}
