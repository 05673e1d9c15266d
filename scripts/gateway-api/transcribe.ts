/**
 * Turns the Go of a Gateway API conformance test into data the repository's runner reads: the
 * test's declared fields (name, description, features, manifests, provisional) and the steps its
 * `Test` function takes, in order.
 *
 * The test body is evaluated symbolically: constants, composite literals (`http.ExpectedResponse`,
 * `types.NamespacedName`), variables, `for ... range` over slices and maps, the file's own helper
 * functions and `t.Run` subtests are worked out here; every call into the suite's helper
 * packages (`kubernetes.`, `http.`, `tls.`, `grpc.`, `tcp.`, `weight.`, `echo.`, and the
 * methods of what they return) becomes a step `{ call, args, subtest }`, its result a reference
 * `{ $ref: step }` later steps may use. What cannot be worked out without running the test (a
 * branch on a value only a cluster would give, a three-clause loop) becomes a step
 * `{ unsupported: why }`, so the runner reports the test as failed with that reason instead of
 * running half of it.
 */
import type { Expr, GoConformanceTest, GoFunc, Stmt } from './go.js';

export type Value =
  | string
  | number
  | boolean
  | null
  | Value[]
  | { [k: string]: Value };

export interface Step {
  /** The helper called, as the test names it: `kubernetes.GatewayAndHTTPRoutesMustBeAccepted`, `client.MakeRequestAndExpectEventuallyConsistentResponse`. */
  call?: string;
  /** For a method call on a value a step returned: that step's id. */
  receiver?: number;
  args?: Value[];
  /** The `t.Run` names the step is inside, outermost first. */
  subtest?: string[];
  unsupported?: string;
  /** `$each`: the id the element is known by, the steps run per element, the elements skipped. */
  elem?: number;
  steps?: Step[];
  unless?: Value;
  id: number;
}

export interface TranscribedTest {
  shortName: string;
  description: string;
  features: string[];
  manifests: string[];
  provisional: boolean;
  slow: boolean;
  /** The Go file it came from, relative to the conformance folder. */
  source: string;
  steps: Step[];
}

/** The suite's constants the tests use (conformance/utils/suite and utils/echo). */
const SUITE_CONSTANTS: Record<string, Value> = {
  InfrastructureNamespace: 'gateway-conformance-infra',
  AppBackendNamespace: 'gateway-conformance-app-backend',
  WebBackendNamespace: 'gateway-conformance-web-backend',
  MeshNamespace: 'gateway-conformance-mesh',
  MeshConsumerNamespace: 'gateway-conformance-mesh-consumer',
  InfraBackendServiceNameV1: 'infra-backend-v1',
  InfraBackendServiceNameV2: 'infra-backend-v2',
  InfraBackendServiceNameV3: 'infra-backend-v3',
  InfrastructureGatewayName: 'gateway-conformance-infra-test',
  MeshAppEchoV1: 'app=echo,version=v1',
  MeshAppEchoV2: 'app=echo,version=v2',
};

/** Packages whose calls are steps the runner carries out. */
const STEP_PACKAGES = new Set(['kubernetes', 'http', 'tls', 'grpc', 'tcp', 'weight', 'echo', 'roundtripper']);
/** Calls that only build a value: evaluated into the step arguments, not steps themselves. */
const PURE_CALLS = new Set(['kubernetes.NewGatewayRef', 'kubernetes.NewResourceRef', 'http.Ipv6SafeHost', 'kubernetes.NewListenerSetRef', 'metav1.LabelSelectorAsSelector', 'client.InNamespace', 'uuid.New', 'net.JoinHostPort', 'net.SplitHostPort']);
/**
 * Helper functions of a test's own file that the runner carries out itself, as it does the
 * suite's helpers: they loop over what the cluster gives (pods, their IPs) to write objects.
 */
const FILE_HELPER_STEPS = new Set(['setupEndpointSlices']);

class Return {
  constructor(readonly values: Value[]) {}
}

interface Scope {
  vars: Map<string, Value>;
  parent?: Scope;
}

export class Transcriber {
  readonly steps: Step[] = [];
  #subtest: string[] = [];
  /** While > 0, calls are collected into a closure's own steps rather than the test's. */
  #sink: Step[][] = [];
  #next = 0;
  /** The function values made so far, by their `$func` id's number. */
  readonly closures: { params: string[]; body: Stmt[]; scope: Scope }[] = [];

  constructor(
    readonly funcs: Map<string, GoFunc>,
    readonly features: Map<string, string>,
    /** The file's renamed imports (`h` for utils/http), by the name the file uses. */
    readonly imports: ReadonlyMap<string, string> = new Map(),
  ) {}

  /** The helper package a name in the file stands for: a renamed step package by its own name. */
  #package(name: string): string {
    const renamed = this.imports.get(name);
    return renamed && STEP_PACKAGES.has(renamed) ? renamed : name;
  }

  #record(step: Omit<Step, 'id' | 'subtest'>): number {
    const target = this.#sink.length ? this.#sink[this.#sink.length - 1] : this.steps;
    const id = this.#next++;
    target.push({ ...step, id, ...(this.#subtest.length ? { subtest: [...this.#subtest] } : {}) });
    return id;
  }

  lookup(scope: Scope, name: string): Value | undefined {
    for (let s: Scope | undefined = scope; s; s = s.parent) if (s.vars.has(name)) return s.vars.get(name);
    return undefined;
  }
  assign(scope: Scope, name: string, value: Value, declare: boolean): void {
    if (!declare) {
      for (let s: Scope | undefined = scope; s; s = s.parent)
        if (s.vars.has(name)) {
          s.vars.set(name, value);
          return;
        }
    }
    scope.vars.set(name, value);
  }

  /** Runs a function body; returns what it returned. */
  run(body: Stmt[], scope: Scope): Value[] | undefined {
    try {
      this.block(body, { vars: new Map(), parent: scope });
    } catch (e) {
      if (e instanceof Return) return e.values;
      throw e;
    }
    return undefined;
  }

  block(body: Stmt[], scope: Scope): void {
    for (const s of body) this.stmt(s, scope);
  }

  stmt(s: Stmt, scope: Scope): void {
    switch (s.k) {
      case 'var':
        s.names.forEach((n, i) => this.assign(scope, n, this.eval(s.values[i], scope), true));
        return;
      case 'assign': {
        const values = s.rhs.length === 1 && s.lhs.length > 1 ? this.multi(s.rhs[0], scope, s.lhs.length) : s.rhs.map((r) => this.eval(r, scope));
        s.lhs.forEach((l, i) => {
          if (l.k === 'ident') {
            if (l.name !== '_') this.assign(scope, l.name, s.op === ':=' || s.op === '=' ? values[i] : { $sym: `${l.name}${s.op}` }, s.op === ':=');
          } else if (l.k === 'sel' || l.k === 'index') {
            this.setPath(l, values[i], scope);
          }
        });
        return;
      }
      case 'expr':
        this.eval(s.x, scope);
        return;
      case 'block':
        this.block(s.body, { vars: new Map(), parent: scope });
        return;
      case 'return':
        throw new Return(s.values.map((v) => this.eval(v, scope)));
      case 'defer':
        return;
      case 'range': {
        const x = this.eval(s.x, scope);
        if (isRef(x) || isField(x)) {
          this.#rangeOverRun(s, x, scope);
          return;
        }
        const entries: [Value, Value][] = Array.isArray(x)
          ? x.map((v, i) => [i, v])
          : typeof x === 'number'
            ? Array.from({ length: x }, (_, i) => [i, i])
            : isSymbol(x)
              ? [[0, x]]
              : x && typeof x === 'object'
                ? Object.entries(x).sort(([a], [b]) => a.localeCompare(b))
                : [];
        for (const [k, v] of entries) {
          const inner: Scope = { vars: new Map(), parent: scope };
          if (s.key && s.key !== '_') inner.vars.set(s.key, k);
          if (s.value && s.value !== '_') inner.vars.set(s.value, v);
          this.block(s.body, inner);
        }
        return;
      }
      case 'for':
        if (this.#hasSteps(s.body, scope)) this.#record({ unsupported: `a loop the runner cannot unroll: ${s.text.split('\n')[0]}` });
        return;
      case 'if': {
        const inner: Scope = { vars: new Map(), parent: scope };
        if (s.init) this.stmt(s.init, inner);
        const cond = s.cond ? this.eval(s.cond, inner) : { $sym: 'cond' };
        if (typeof cond === 'boolean') {
          if (cond) this.block(s.body, inner);
          else if (s.else) this.block(s.else, inner);
          return;
        }
        // A condition on what only a run gives (an error, a response): fine when neither branch
        // takes a step of its own (error handling), otherwise the runner cannot follow it.
        if (this.#hasSteps(s.body, inner) || (s.else && this.#hasSteps(s.else, inner))) {
          this.#record({ unsupported: `a branch on a value of the run (${describe(s.cond)})` });
          return;
        }
        // `if suite.SupportedFeatures.Has(...) { return }`: the test (or subtest) ends there when
        // the check holds at run time
        const logOnly = (b: Stmt) => b.k === 'expr' && b.x.k === 'call' && b.x.fn.k === 'sel' && b.x.fn.x.k === 'ident' && b.x.fn.x.name === 't' && /^(Log|Logf)$/.test(b.x.fn.name);
        if (!s.else && fromRun(cond) && s.body.some((b) => b.k === 'return' && b.values.length === 0) && s.body.every((b) => (b.k === 'return' && b.values.length === 0) || logOnly(b))) {
          this.#record({ call: '$returnIf', args: [cond] });
          return;
        }
        // `if <check of what the run gave> { t.Fatalf(...) }`, or `{ ...; return false }` in a
        // function AwaitConvergence polls: an assertion the runner makes
        const fatal = !s.else && fromRun(cond) ? s.body.find((b) => b.k === 'expr' && b.x.k === 'call' && b.x.fn.k === 'sel' && b.x.fn.x.k === 'ident' && b.x.fn.x.name === 't' && /^(Fatal|Fatalf|Error|Errorf|FailNow)$/.test(b.x.fn.name)) : undefined;
        const notYet = !s.else && fromRun(cond) && this.#sink.length > 0 && s.body.some((b) => b.k === 'return' && b.values.length === 1 && b.values[0].k === 'lit' && b.values[0].value === false);
        if (fatal && fatal.k === 'expr' && fatal.x.k === 'call') {
          const [message] = fatal.x.args.map((a) => this.eval(a, inner));
          this.#record({ call: '$failIf', args: [cond, typeof message === 'string' ? message : describe(s.cond)] });
        } else if (notYet) this.#record({ call: '$failIf', args: [cond, `not yet: ${describe(s.cond)}`] });
        return;
      }
      case 'switch': {
        // the clause whose value equals the tag (or, tagless, whose condition is true); a switch
        // on what only a run gives is fine when no clause takes a step of its own
        const tag = s.tag ? this.eval(s.tag, scope) : true;
        const known = (v: Value) => v === null || typeof v !== 'object';
        const chosen = (): Stmt[] | undefined | false => {
          if (!known(tag)) return false;
          for (const c of s.cases) {
            if (!c.values) continue;
            const values = c.values.map((v) => this.eval(v, scope));
            if (!values.every(known)) return false;
            if (values.includes(tag)) return c.body;
          }
          return s.cases.find((c) => !c.values)?.body;
        };
        const body = chosen();
        if (body === false) {
          if (s.cases.some((c) => this.#hasSteps(c.body, scope))) this.#record({ unsupported: `a switch on a value of the run (${s.text.split('\n')[0]})` });
          return;
        }
        if (body) this.block(body, { vars: new Map(), parent: scope });
        return;
      }
      case 'other':
        if (/^(switch|select|go)/.test(s.text)) this.#record({ unsupported: `a ${s.text.split(/\s/)[0]} statement` });
        return;
    }
  }

  /**
   * A `for ... range` over a list only the run gives (a Gateway's listeners or status addresses
   * as fetched): the element is a value of its own (`{ $ref: elem }`, no step), and the loop
   * becomes what the runner works out once it has the list —
   *
   *   - `if <cond on e> { acc = append(acc, e) }` alone: `acc` is `{ $filter: list, elem, $where: cond }`
   *     (gateway-modify-listeners.go keeps the "http" listener; filterAddr drops an address);
   *   - `acc = append(acc, <value of e>)`: `acc` is `{ $map: list, elem, $value }`
   *     (gateway-static-addresses.go's extractStatusAddresses);
   *   - steps in the body: a step `$each` running them per element, skipping those a leading
   *     `if <cond> { continue }` names (`$unless`).
   *
   * Anything else in such a loop (a branch on the element that takes steps) cannot be followed.
   */
  #rangeOverRun(s: Extract<Stmt, { k: 'range' }>, list: Value, scope: Scope): void {
    const elemId = this.#next++;
    const inner: Scope = { vars: new Map(), parent: scope };
    if (s.key && s.key !== '_') inner.vars.set(s.key, { $sym: 'index' });
    if (s.value && s.value !== '_') inner.vars.set(s.value, { $ref: elemId });
    let body = s.body;
    // if <cond> { acc = append(acc, e) }
    const [first] = body;
    if (body.length === 1 && first.k === 'if' && !first.init && !first.else && first.cond && first.body.length === 1) {
      const appended = appendTo(first.body[0]);
      if (appended && appended.value.k === 'ident' && appended.value.name === s.value) {
        this.assign(scope, appended.acc, { $filter: list, elem: elemId, $where: this.eval(first.cond, inner) }, false);
        return;
      }
    }
    // if <cond> { continue }
    let unless: Value | undefined;
    if (first?.k === 'if' && !first.init && !first.else && first.cond && first.body.length === 1 && first.body[0].k === 'other' && first.body[0].text === 'continue') {
      unless = this.eval(first.cond, inner);
      body = body.slice(1);
    }
    const accumulated: { acc: string; value: Value }[] = [];
    const rest: Stmt[] = [];
    for (const st of body) {
      const appended = appendTo(st);
      if (appended && this.lookup(scope, appended.acc) !== undefined) accumulated.push({ acc: appended.acc, value: appended.value as unknown as Value });
      else rest.push(st);
    }
    this.#sink.push([]);
    try {
      this.block(rest, inner);
      for (const a of accumulated) a.value = this.eval(a.value as unknown as Expr, inner);
    } finally {
      const steps = this.#sink.pop()!;
      if (steps.some((st) => st.unsupported)) this.#record({ unsupported: steps.find((st) => st.unsupported)!.unsupported });
      else if (steps.length) this.#record({ call: '$each', args: [list], elem: elemId, steps, ...(unless !== undefined ? { unless } : {}) });
    }
    for (const a of accumulated) {
      const before = this.lookup(scope, a.acc);
      if (Array.isArray(before) && before.length) this.#record({ unsupported: `appending to a list that already has items in a loop over a value of the run: ${describe(s.x)}` });
      this.assign(scope, a.acc, { $map: list, elem: elemId, $value: a.value, ...(unless !== undefined ? { $unless: unless } : {}) }, false);
    }
  }

  /** Whether running `body` would take a step (dry run: nothing recorded). */
  #hasSteps(body: Stmt[], scope: Scope): boolean {
    this.#sink.push([]);
    try {
      this.run(body, scope);
    } catch {
      // an error in a branch not taken is not the test's
    }
    const steps = this.#sink.pop()!;
    return steps.some((st) => st.call !== undefined || st.unsupported !== undefined);
  }

  setPath(target: Expr, value: Value, scope: Scope): void {
    const path: string[] = [];
    const typedPath: (string | number)[] = [];
    let x: Expr = target;
    while (x.k === 'sel' || x.k === 'index') {
      if (x.k === 'sel') {
        path.unshift(x.name);
        typedPath.unshift(x.name);
      } else {
        const i = this.eval(x.index, scope);
        path.unshift(String(i));
        typedPath.unshift(typeof i === 'number' ? i : String(i));
      }
      x = x.x;
    }
    if (x.k !== 'ident') return;
    let obj = this.lookup(scope, x.name);
    if (isRef(obj)) {
      // mutate.Spec.Rules[0].BackendRefs[0].Name = "...": a change to an object the test fetched
      this.#record({ call: '$set', receiver: obj.$ref, args: [typedPath, value] });
      return;
    }
    if (!obj || typeof obj !== 'object') return;
    for (const p of path.slice(0, -1)) {
      const o = obj as Record<string, Value>;
      if (!o[p] || typeof o[p] !== 'object') o[p] = {};
      obj = o[p];
    }
    (obj as Record<string, Value>)[path[path.length - 1]] = value;
  }

  multi(x: Expr, scope: Scope, n: number): Value[] {
    const v = this.eval(x, scope, true);
    // a step's results before its error (`cert, key, err := kubernetes.GetTLSSecret(...)`): the
    // step's `$result` n, which the runner gives from what the step returned
    if (Array.isArray(v) && (v as unknown as { $multi?: boolean }).$multi && v.length === 2 && n > 2 && isRef(v[0]) && isSymbol(v[1]) && v[1].$sym === 'err') {
      return [v[0], ...Array.from({ length: n - 2 }, (_, i) => ({ $ref: v[0] && isRef(v[0]) ? v[0].$ref : 0, $result: i + 1 })), v[1]];
    }
    if (Array.isArray(v) && (v as unknown as { $multi?: boolean }).$multi) return v;
    return [v, ...Array.from({ length: n - 1 }, (_, i) => ({ $sym: `result${i + 1}` }))];
  }

  eval(x: Expr, scope: Scope, multi = false): Value {
    switch (x.k) {
      case 'lit':
        return x.value;
      case 'ident': {
        const v = this.lookup(scope, x.name);
        if (v !== undefined) return v;
        if (x.name === 'nil') return null;
        if (x.name in SUITE_CONSTANTS) return SUITE_CONSTANTS[x.name];
        return { $sym: x.name };
      }
      case 'sel': {
        if (x.x.k === 'ident' && this.lookup(scope, x.x.name) === undefined) {
          const pkg = x.x.name;
          if (pkg === 'features' && this.features.has(x.name)) return this.features.get(x.name)!;
          if (x.name in SUITE_CONSTANTS) return SUITE_CONSTANTS[x.name];
          if (pkg === 'time') return { $duration: x.name };
          const constant = apiConstant(pkg, x.name);
          if (constant !== undefined) return constant;
          return { $sym: `${pkg}.${x.name}` };
        }
        const base = this.eval(x.x, scope);
        if (base && typeof base === 'object' && !Array.isArray(base) && !isRef(base) && !isField(base) && x.name in base) return base[x.name];
        // a field of what a step returned (original.Generation, mutate.Spec.Listeners)
        if (isRef(base)) return { $of: base, $field: [x.name] };
        if (isField(base)) return { $of: base.$of, $field: [...base.$field, x.name] };
        if (isSymbol(base)) return { $sym: `${symbolName(base)}.${x.name}` };
        return { $sym: `.${x.name}` };
      }
      case 'index': {
        const base = this.eval(x.x, scope);
        const i = this.eval(x.index, scope);
        if (isField(base) && (typeof i === 'number' || typeof i === 'string')) return { $of: base.$of, $field: [...base.$field, i] };
        // an element of what a step returned (caConfigMap["ca.crt"])
        if (isRef(base) && (typeof i === 'number' || typeof i === 'string')) return { $of: base, $field: [i] };
        if (Array.isArray(base) && typeof i === 'number') return base[i];
        if (base && typeof base === 'object' && typeof i === 'string' && i in base) return (base as Record<string, Value>)[i];
        return { $sym: 'index' };
      }
      case 'slice':
        return this.eval(x.x, scope);
      case 'composite':
        return this.composite(x, scope);
      case 'unary': {
        const v = this.eval(x.x, scope);
        if (x.op === '&' || x.op === '*') return v;
        if (x.op === '!' && typeof v === 'boolean') return !v;
        if (x.op === '-' && typeof v === 'number') return -v;
        if (x.op === '!' && fromRun(v)) return { $not: v };
        return { $sym: `${x.op}expr` };
      }
      case 'binary': {
        const a = this.eval(x.x, scope);
        const b = this.eval(x.y, scope);
        if (x.op === '+' && (typeof a === 'string' || typeof b === 'string' || isConcat(a) || isConcat(b))) return concat(a, b);
        if (typeof a === 'number' && typeof b === 'number') {
          const ops: Record<string, (p: number, q: number) => Value> = { '+': (p, q) => p + q, '-': (p, q) => p - q, '*': (p, q) => p * q, '/': (p, q) => p / q, '<': (p, q) => p < q, '>': (p, q) => p > q, '==': (p, q) => p === q, '!=': (p, q) => p !== q };
          if (ops[x.op]) return ops[x.op](a, b);
        }
        if ((x.op === '==' || x.op === '!=') && !isSymbol(a) && !isSymbol(b) && !isRef(a) && !isRef(b) && (typeof a !== 'object' || a === null) && (typeof b !== 'object' || b === null)) return x.op === '==' ? a === b : a !== b;
        // a comparison with what the run gives (`addr.Value != filter.Value`, `len(gw.Status.Addresses) == 1`): the runner decides it
        // (a comparison with nil is an error check: a failing step throws in the runner instead)
        if (['==', '!=', '<', '>', '<=', '>='].includes(x.op) && (fromRun(a) || fromRun(b)) && a !== null && b !== null) return { $cmp: x.op, x: a, y: b };
        if (x.op === '&&' && (a === false || b === false)) return false;
        if (x.op === '||' && (a === true || b === true)) return true;
        if ((x.op === '&&' || x.op === '||') && typeof a === 'boolean' && typeof b === 'boolean') return x.op === '&&' ? a && b : a || b;
        return { $sym: `(${x.op})` };
      }
      case 'func':
        return this.closure(x, scope);
      case 'typeexpr':
        return { $type: x.type };
      case 'call':
        return this.call(x, scope, multi);
    }
  }

  closure(x: Extract<Expr, { k: 'func' }>, scope: Scope): Value {
    // A function value: its body is run where it is called (a local helper), or — passed to a
    // helper (a weighted-distribution sender) — transcribed as the steps it takes.
    const id = `closure${this.closures.length}`;
    this.closures.push({ params: x.params, body: x.body, scope });
    this.#sink.push([]);
    const saved = this.#subtest;
    this.#subtest = [];
    let returned: Value[] | undefined;
    try {
      returned = this.run(x.body, { vars: new Map(x.params.map((p) => [p, { $sym: p }])), parent: scope });
    } catch {
      // the body's own failure modes are the runner's to find
    }
    this.#subtest = saved;
    const steps = this.#sink.pop()!;
    // what it returns, when that is worked out from its steps (require.Eventually's condition)
    const last = returned?.[returned.length - 1];
    return { $func: id, steps: steps as unknown as Value, ...(last !== undefined && fromRun(last) ? { returns: last } : {}) };
  }

  composite(x: Extract<Expr, { k: 'composite' }>, scope: Scope): Value {
    const keyed = x.elts.length > 0 && x.elts.every((e) => e.key);
    if (x.type.startsWith('map[') || (keyed && x.type === '' && x.elts.every((e) => e.key && e.key.k !== 'ident'))) {
      const out: Record<string, Value> = {};
      for (const e of x.elts) out[String(e.key!.k === 'ident' ? this.eval(e.key!, scope) : this.eval(e.key!, scope))] = this.eval(e.value, scope);
      return out;
    }
    if (x.type.startsWith('[')) {
      const elemType = x.type.replace(/^\[[^\]]*\]/, '');
      return x.elts.map((e) => (e.value.k === 'composite' && e.value.type === '' ? this.composite({ ...e.value, type: elemType }, scope) : this.eval(e.value, scope)));
    }
    if (keyed || x.elts.length === 0) {
      // an empty value of a named type stands for its kind: GatewayAndRoutesMustBeAccepted(..., &v1.GRPCRoute{}, ...)
      // and an API object says its kind: suite.Client.Delete(ctx, &v1.ReferenceGrant{ObjectMeta: ...})
      const out: Record<string, Value> = (x.elts.length === 0 && x.type) || /^(v1|v1beta1|v1alpha2|v1alpha3|gatewayv1\w*|corev1|xv1alpha1)\.[A-Z]/.test(x.type) ? { $type: x.type } : {};
      for (const e of x.elts) {
        const name = e.key!.k === 'ident' ? e.key!.name : String(this.eval(e.key!, scope));
        out[name] = e.value.k === 'composite' && e.value.type === '' ? this.composite(e.value, scope) : this.eval(e.value, scope);
      }
      return out;
    }
    return x.elts.map((e) => this.eval(e.value, scope));
  }

  call(x: Extract<Expr, { k: 'call' }>, scope: Scope, multi: boolean): Value {
    const fn = x.fn;
    const args = () => x.args.map((a) => this.eval(a, scope));
    // a conversion: string(x), v1.Namespace(x), []byte(x)
    if (fn.k === 'typeexpr' || (fn.k === 'ident' && ['string', 'int', 'int32', 'int64', 'float64'].includes(fn.name)) || (fn.k === 'sel' && fn.x.k === 'ident' && ['v1', 'gatewayv1', 'v1beta1', 'v1alpha2', 'v1alpha3', 'ptr'].includes(fn.x.name) && /^[A-Z]/.test(fn.name) && !['NewGatewayRef'].includes(fn.name))) {
      const a = args();
      return a.length === 1 ? a[0] : a;
    }
    if (fn.k === 'ident') {
      if (fn.name === 'len') {
        const v = this.eval(x.args[0], scope);
        if (isRef(v) || isField(v)) return { $len: v };
        return Array.isArray(v) ? v.length : typeof v === 'string' ? v.length : v && typeof v === 'object' && !isSymbol(v) ? Object.keys(v).length : { $sym: 'len' };
      }
      if (fn.name === 'append') {
        const [base, ...rest] = args();
        const added = x.spread ? (rest[0] as Value[]) : rest;
        if (isField(base)) return { $append: [base, ...added] };
        return [...(Array.isArray(base) ? base : []), ...added];
      }
      if (fn.name === 'new') {
        // new(T) is a zero value; Go 1.26's new(expr) a pointer to the value
        const [v] = args();
        return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : {};
      }
      if (fn.name === 'make') return {};
      if (fn.name === 'panic') return null;
      const local = this.lookup(scope, fn.name);
      if (local && typeof local === 'object' && '$func' in local) return this.invoke(this.closures[Number(String(local.$func).slice(7))], args(), multi);
      if (FILE_HELPER_STEPS.has(fn.name)) return { $ref: this.#record({ call: `tests.${fn.name}`, args: args() }) };
      const top = this.funcs.get(fn.name);
      if (top) return this.invoke({ ...top, scope: { vars: new Map() } }, args(), multi);
      return { $sym: `${fn.name}()` };
    }
    if (fn.k === 'sel') {
      const name = fn.name;
      // t.Run(name, func(t) {...}): a subtest; other methods of t report or skip
      const tValue = fn.x.k === 'ident' ? this.lookup(scope, fn.x.name) : undefined;
      if (fn.x.k === 'ident' && (fn.x.name === 't' || (isSymbol(tValue) && tValue.$sym === 't')) && (tValue === undefined || (isSymbol(tValue) && tValue.$sym === 't'))) {
        if (name === 'Run') {
          const [title] = args();
          const body = x.args[1];
          this.#subtest.push(typeof title === 'string' ? title : describeValue(title));
          try {
            if (body.k === 'func') this.run(body.body, { vars: new Map(), parent: scope });
            else {
              const f = this.eval(body, scope);
              if (f && typeof f === 'object' && '$func' in f) this.invoke(this.closures[Number(String(f.$func).slice(7))], [{ $sym: 't' }], false);
            }
          } finally {
            this.#subtest.pop();
          }
          return true;
        }
        if (name === 'Skip' || name === 'Skipf' || name === 'SkipNow') {
          this.#record({ unsupported: `the test skips itself: ${describeValue(args()[0] ?? '')}` });
          throw new Return([]);
        }
        return null;
      }
      if (fn.x.k === 'ident' && fn.x.name === 'fmt' && name === 'Sprintf') return sprintf(args());
      if (fn.x.k === 'ident' && fn.x.name === 'bytes' && name === 'Equal') {
        const a = args();
        if (a.some(fromRun)) return { $call: 'bytes.Equal', args: a };
      }
      if (fn.x.k === 'ident' && fn.x.name === 'strings' && this.lookup(scope, 'strings') === undefined) {
        const a = args();
        if (name === 'Repeat' && typeof a[0] === 'string' && typeof a[1] === 'number') return a[0].repeat(a[1]);
        if (a.every((v) => typeof v === 'string')) {
          const [s, p] = a as string[];
          if (name === 'ToLower') return s.toLowerCase();
          if (name === 'ToUpper') return s.toUpperCase();
          if (name === 'HasPrefix') return s.startsWith(p);
          if (name === 'Join') return s;
          if (name === 'Split') return s.split(p);
        }
        // on what the run gives (strings.HasPrefix(cReq.Pod, ...)): the runner works it out
        if (name === 'HasPrefix' && a.some(fromRun)) return { $call: `strings.${name}`, args: a };
        return { $sym: `strings.${name}` };
      }
      if (fn.x.k === 'ident' && ['require', 'assert'].includes(fn.x.name) && this.lookup(scope, fn.x.name) === undefined && !/^NoError/.test(name)) {
        // an assertion on what the run gave (require.NotEqual(t, original.Generation, updated.Generation))
        this.#record({ call: `require.${name}`, args: args() });
        return null;
      }
      if (fn.x.k === 'ident' && ['require', 'assert', 'tlog', 'klog', 'log'].includes(fn.x.name)) {
        // require.NoError(t, suite.Client.Delete(...)): the call in it is a step
        args();
        return null;
      }
      const receiver = fn.x.k === 'ident' ? this.lookup(scope, fn.x.name) : this.eval(fn.x, scope);
      // methods of values the test built
      if (name === 'GetTestCaseName') {
        const [i] = args();
        const tc = receiver as Record<string, Value>;
        if (tc && typeof tc.TestCaseName === 'string' && tc.TestCaseName) return tc.TestCaseName;
        const req = (tc?.Request ?? {}) as Record<string, Value>;
        return `${i} request to '${typeof req.Host === 'string' ? req.Host : ''}${typeof req.Path === 'string' ? req.Path : ''}'`;
      }
      if (name === 'String' && receiver && typeof receiver === 'object' && 'Name' in receiver) return `${receiver.Namespace}/${receiver.Name}`;
      // uuid.New().String(): a fresh one each time the runner makes the request
      if (name === 'String' && receiver && typeof receiver === 'object' && (receiver as Record<string, Value>).$call === 'uuid.New') return { $uuid: true };
      // url.Values the test built: Set a key, Encode them as a query (sorted by key, as Go does)
      if (receiver && typeof receiver === 'object' && !Array.isArray(receiver) && !isRef(receiver) && !isSymbol(receiver) && !isField(receiver)) {
        if (name === 'Set') {
          const [key, value] = args();
          if (typeof key === 'string') (receiver as Record<string, Value>)[key] = [value];
          return null;
        }
        if (name === 'Encode') return { $urlencode: structuredClone(receiver) };
      }
      if (fn.x.k === 'ident' && receiver === undefined) {
        const pkg = this.#package(fn.x.name);
        const call = `${pkg}.${name}`;
        if (PURE_CALLS.has(call)) return { $call: call, args: args() };
        if (STEP_PACKAGES.has(pkg)) {
          const id = this.#record({ call, args: args() });
          // The second result is an error, except for the calls that return two values
          // (`gwAddr, hostnames := ...`): that one is the field `$1` of what the runner records.
          const second: Value = TWO_VALUE_CALLS.has(call) ? { $of: { $ref: id }, $field: ['$1'] } : { $sym: 'err' };
          return multi ? (Object.assign([{ $ref: id }, second] as Value[], { $multi: true }) as Value) : { $ref: id };
        }
        if (pkg === 'suite' || pkg === 's') {
          // suite.Applier.MustApplyWithCleanup, ... on the suite itself
          const id = this.#record({ call, args: args() });
          return { $ref: id };
        }
        return { $sym: `${call}()` };
      }
      // a method on what a step returned (client.MakeRequestAndExpectEventuallyConsistentResponse)
      if (isRef(receiver)) {
        const id = this.#record({ call: `${fn.x.k === 'ident' ? fn.x.name : 'value'}.${name}`, receiver: Number(receiver.$ref), args: args() });
        return { $ref: id };
      }
      if (isSymbol(receiver) && name === 'Error' && x.args.length === 0) return { $sym: `${symbolName(receiver)}.Error()` };
      if (isSymbol(receiver) || receiver === undefined) {
        // a helper's parameter the test passed its client in (`c client.Client` given
        // suite.Client): the client it stands for
        const base = isSymbol(receiver) && /\.Client$/.test(symbolName(receiver)) ? symbolName(receiver) : describe(fn.x);
        if (/^(suite|s)\b/.test(base) || isSymbol(receiver)) {
          const id = this.#record({ call: `${base}.${name}`, args: args() });
          // s.Client.Get(ctx, nn, obj) fills obj: from here on, obj is what the step fetched
          // and s.Client.List(ctx, list, options...) fills list
          const filled = name === 'Get' ? x.args[2] : name === 'List' ? x.args[1] : undefined;
          if (/\.Client$/.test(base) && filled?.k === 'ident') this.assign(scope, filled.name, { $ref: id }, false);
          else if (/\.Client$/.test(base) && filled?.k === 'unary' && filled.x.k === 'ident') this.assign(scope, filled.x.name, { $ref: id }, false);
          // websocket.Message.Receive(ws, &reply) fills reply
          if (base === 'websocket.Message' && name === 'Receive' && x.args[1]?.k === 'unary' && x.args[1].x.k === 'ident') this.assign(scope, x.args[1].x.name, { $ref: id }, false);
          return { $ref: id };
        }
      }
      return { $sym: `${describe(fn.x)}.${name}()` };
    }
    return { $sym: 'call' };
  }

  invoke(f: { params: string[]; results?: string[]; body: Stmt[]; scope: Scope }, args: Value[], multi: boolean): Value {
    const vars = new Map<string, Value>(f.params.map((p, i) => [p, args[i] ?? null]));
    for (const r of f.results ?? []) vars.set(r, null);
    let result = this.run(f.body, { vars, parent: f.scope });
    if (!result?.length && f.results?.length) result = f.results.map((r) => vars.get(r) ?? null);
    if (!result || result.length === 0) return null;
    if (result.length === 1 || !multi) return result[0];
    return Object.assign(result, { $multi: true });
  }
}

/**
 * The Gateway API's and apimachinery's string constants the tests compare status with: their
 * values are their names' last part (gateway-api apis/v1: `RouteConditionAccepted = "Accepted"`,
 * `ListenerReasonInvalidCertificateRef = "InvalidCertificateRef"`; `metav1.ConditionTrue = "True"`;
 * `HTTPProtocolType = "HTTP"`).
 */
function apiConstant(pkg: string, name: string): Value | undefined {
  if (!/^(v1|gatewayv1|v1beta1|v1alpha2|v1alpha3|v1a2|v1b1|gatewayv1alpha2|gatewayv1beta1|metav1|xv1alpha1|confv1)$/.test(pkg)) return undefined;
  const m =
    /^(?:Route|Gateway|Listener|GatewayClass|ListenerSet|ListenerEntry|Policy|BackendTLSPolicy)(?:Condition|Reason)(\w+)$/.exec(name) ??
    /^Condition(True|False|Unknown)$/.exec(name) ??
    /^(HTTPS?|TLS|TCP|UDP)ProtocolType$/.exec(name) ??
    /^NamespacesFrom(All|Same|Selector|None)$/.exec(name) ??
    /^(Terminate|Passthrough)$/.exec(name.replace(/^TLSMode/, ''));
  return m ? m[1] : undefined;
}


/** `acc = append(acc, x)`: the list's name and what is appended. */
function appendTo(st: Stmt): { acc: string; value: Expr } | undefined {
  if (st.k !== 'assign' || st.lhs.length !== 1 || st.lhs[0].k !== 'ident' || st.rhs.length !== 1 || (st.op !== '=' && st.op !== ':=')) return undefined;
  const call = st.rhs[0];
  const acc = st.lhs[0].name;
  if (call.k !== 'call' || call.fn.k !== 'ident' || call.fn.name !== 'append' || call.args.length !== 2 || call.spread) return undefined;
  if (call.args[0].k !== 'ident' || call.args[0].name !== acc) return undefined;
  return { acc, value: call.args[1] };
}

/** A value the run gives: a step's result, a field or length of one, a comparison of them. */
function fromRun(v: unknown): boolean {
  return isRef(v) || isField(v) || (!!v && typeof v === 'object' && ('$len' in v || '$cmp' in v || '$not' in v || ('$call' in v && Array.isArray((v as { args?: unknown }).args) && (v as unknown as { args: unknown[] }).args.some(fromRun))));
}

function isSymbol(v: unknown): v is { $sym: string } {
  return !!v && typeof v === 'object' && '$sym' in (v as object);
}
/** Step calls whose second result is a value, not an error. */
const TWO_VALUE_CALLS = new Set(['kubernetes.GatewayAndTLSRoutesMustBeAccepted']);

function isRef(v: unknown): v is { $ref: number } {
  return !!v && typeof v === 'object' && '$ref' in (v as object);
}
function isField(v: unknown): v is { $of: { $ref: number }; $field: (string | number)[] } {
  return !!v && typeof v === 'object' && '$field' in (v as object);
}
function isConcat(v: unknown): v is { $concat: Value[] } {
  return !!v && typeof v === 'object' && '$concat' in (v as object);
}
function symbolName(v: { $sym: string } | { $ref: number }): string {
  return '$sym' in v ? v.$sym : `step${v.$ref}`;
}
function concat(a: Value, b: Value): Value {
  const parts = [...(isConcat(a) ? a.$concat : [a]), ...(isConcat(b) ? b.$concat : [b])];
  const merged: Value[] = [];
  for (const p of parts) {
    if (typeof p === 'string' && typeof merged[merged.length - 1] === 'string') merged[merged.length - 1] = (merged[merged.length - 1] as string) + p;
    else merged.push(p);
  }
  return merged.length === 1 ? merged[0] : { $concat: merged };
}

/** fmt.Sprintf for the verbs the tests use (%s %d %v %q). */
function sprintf(args: Value[]): Value {
  const [format, ...rest] = args;
  if (typeof format !== 'string') return { $sym: 'Sprintf' };
  let i = 0;
  const parts: Value[] = [];
  let text = '';
  for (let j = 0; j < format.length; j++) {
    if (format[j] !== '%') {
      text += format[j];
      continue;
    }
    const verb = format[++j];
    if (verb === '%') {
      text += '%';
      continue;
    }
    const v = rest[i++];
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') text += verb === 'q' ? JSON.stringify(v) : String(v);
    else {
      parts.push(text, v);
      text = '';
    }
  }
  parts.push(text);
  return parts.reduce((acc, p) => concat(acc, p), '' as Value);
}

function describe(x: Expr | undefined): string {
  if (!x) return '';
  switch (x.k) {
    case 'ident':
      return x.name;
    case 'sel':
      return `${describe(x.x)}.${x.name}`;
    case 'call':
      return `${describe(x.fn)}(...)`;
    case 'binary':
      return `${describe(x.x)} ${x.op} ${describe(x.y)}`;
    case 'unary':
      return `${x.op}${describe(x.x)}`;
    case 'lit':
      return JSON.stringify(x.value);
    default:
      return x.k;
  }
}

function describeValue(v: Value): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Transcribes one parsed test. */
export function transcribeTest(
  test: GoConformanceTest,
  funcs: Map<string, GoFunc>,
  vars: Stmt[],
  features: Map<string, string>,
  source: string,
  imports: ReadonlyMap<string, string> = new Map(),
): TranscribedTest {
  const t = new Transcriber(funcs, features, imports);
  // the file's package-level variables and constants
  const file: Scope = { vars: new Map() };
  for (const v of vars) {
    try {
      t.stmt(v, file);
    } catch {
      // one the tests do not use, or cannot be worked out: a test using it says so
    }
  }
  const field = (name: string): Value => {
    const x = test.fields.get(name);
    return x ? t.eval(x, file) : null;
  };
  const body = test.fields.get('Test');
  if (body?.k === 'func') {
    try {
      t.run(body.body, { vars: new Map(body.params.map((p) => [p, { $sym: p }])), parent: file });
    } catch (err) {
      t.steps.push({ id: t.steps.length, unsupported: `the runner could not read the test body: ${(err as Error).message}` });
    }
  } else t.steps.push({ id: 0, unsupported: 'no Test function' });
  // A test with a step the runner cannot take fails on it: its other steps are not kept.
  const unsupported = t.steps.filter((s, i, all) => s.unsupported && all.findIndex((o) => o.unsupported === s.unsupported) === i);
  const steps = unsupported.length ? unsupported : t.steps;
  const strings = (v: Value) => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);
  return {
    shortName: String(field('ShortName')),
    description: String(field('Description') ?? ''),
    features: strings(field('Features')),
    manifests: strings(field('Manifests')),
    provisional: field('Provisional') === true,
    slow: field('Slow') === true,
    source,
    steps,
  };
}
