import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  extractTraceContext,
  injectTraceContext,
  parseB3Multi,
  parseB3Single,
  parseTraceparent,
  parseTracestate,
  type HeaderBag,
} from '../../src/telemetry/propagation.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';
const P = '05e3ac9a4f6e3b90';

test('traceparent: valid and invalid values per W3C Trace Context', () => {
  const cases: [string, string | undefined, { sampled?: boolean } | undefined][] = [
    ['valid sampled', `00-${T}-${S}-01`, { sampled: true }],
    ['valid not sampled', `00-${T}-${S}-00`, { sampled: false }],
    ['other flag bits ignored', `00-${T}-${S}-03`, { sampled: true }],
    ['future version with extra field', `01-${T}-${S}-01-what-the-future-holds`, { sampled: true }],
    ['future version exact length', `cc-${T}-${S}-00`, { sampled: false }],
    ['surrounding whitespace trimmed', `  00-${T}-${S}-01 `, { sampled: true }],
    ['absent', undefined, undefined],
    ['empty', '', undefined],
    ['version ff forbidden', `ff-${T}-${S}-01`, undefined],
    ['version 00 with extra field', `00-${T}-${S}-01-extra`, undefined],
    ['future version, no dash after flags', `01-${T}-${S}-01x`, undefined],
    ['upper-case trace id', `00-${T.toUpperCase()}-${S}-01`, undefined],
    ['upper-case version', `0A-${T}-${S}-01`, undefined],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${S}-01`, undefined],
    ['all-zero span id', `00-${T}-${'0'.repeat(16)}-01`, undefined],
    ['short trace id', `00-${T.slice(1)}-${S}-01`, undefined],
    ['long span id', `00-${T}-${S}0-01`, undefined],
    ['non-hex flags', `00-${T}-${S}-0g`, undefined],
    ['wrong separators', `00_${T}_${S}_01`, undefined],
    ['garbage', 'hello', undefined],
  ];
  for (const [name, value, want] of cases) {
    const got = parseTraceparent(value);
    if (!want) assert.equal(got, undefined, name);
    else {
      assert.ok(got, name);
      assert.equal(got.traceId, T, name);
      assert.equal(got.spanId, S, name);
      assert.equal(got.sampled, want.sampled, name);
    }
  }
});

test('tracestate: kept when valid, dropped whole when invalid', () => {
  const cases: [string | undefined, string | undefined][] = [
    ['rojo=00f067aa0ba902b7,congo=t61rcWkgMzE', 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE'],
    ['tenant@vendor=x , other=y', 'tenant@vendor=x,other=y'],
    ['Upper=1', undefined],
    ['dup=1,dup=2', undefined],
    ['novalue', undefined],
    ['k=has,comma', undefined],
    [Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(','), undefined],
    ['', undefined],
    [undefined, undefined],
  ];
  for (const [input, want] of cases) assert.equal(parseTracestate(input), want, String(input));
  assert.equal(parseTraceparent(`00-${T}-${S}-01`, 'a=b')?.traceState, 'a=b');
});

test('B3 single header: forms and invalid values', () => {
  const cases: [string, string, object | undefined][] = [
    ['ids only (deferred)', `${T}-${S}`, { traceId: T, spanId: S }],
    ['sampled', `${T}-${S}-1`, { traceId: T, spanId: S, sampled: true }],
    ['not sampled with parent', `${T}-${S}-0-${P}`, { traceId: T, spanId: S, sampled: false, parentSpanId: P }],
    ['debug', `${T}-${S}-d`, { traceId: T, spanId: S, sampled: true, debug: true }],
    ['64-bit trace id padded', `a3ce929d0e0e4736-${S}-1`, { traceId: '0000000000000000a3ce929d0e0e4736', spanId: S, sampled: true }],
    ['bad sampling flag', `${T}-${S}-x`, undefined],
    ['bad parent', `${T}-${S}-1-zz`, undefined],
    ['zero trace', `${'0'.repeat(32)}-${S}-1`, undefined],
    ['too many parts', `${T}-${S}-1-${P}-x`, undefined],
    ['one id', T, undefined],
    ['upper case', `${T.toUpperCase()}-${S}`, undefined],
  ];
  for (const [name, value, want] of cases) {
    const got = parseB3Single(value);
    if (!want) assert.equal(got, undefined, name);
    else assert.deepEqual(got, { context: want, format: 'b3-single' }, name);
  }
  assert.deepEqual(parseB3Single('0'), { decision: false, format: 'b3-single' });
  assert.deepEqual(parseB3Single('1'), { decision: true, format: 'b3-single' });
  assert.deepEqual(parseB3Single('d'), { decision: true, format: 'b3-single' });
});

test('B3 multi headers: forms and invalid values', () => {
  const cases: [string, HeaderBag, object | undefined][] = [
    ['full', { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-parentspanid': P, 'x-b3-sampled': '1' }, { context: { traceId: T, spanId: S, parentSpanId: P, sampled: true }, format: 'b3-multi' }],
    ['legacy true', { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': 'true' }, { context: { traceId: T, spanId: S, sampled: true }, format: 'b3-multi' }],
    ['deferred', { 'x-b3-traceid': T, 'x-b3-spanid': S }, { context: { traceId: T, spanId: S }, format: 'b3-multi' }],
    ['debug flag', { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-flags': '1' }, { context: { traceId: T, spanId: S, sampled: true, debug: true }, format: 'b3-multi' }],
    ['decision only', { 'x-b3-sampled': '0' }, { decision: false, format: 'b3-multi' }],
    ['repeated header takes the first', { 'x-b3-traceid': [T, 'x'], 'x-b3-spanid': S }, { context: { traceId: T, spanId: S }, format: 'b3-multi' }],
    ['trace id without span id', { 'x-b3-traceid': T }, undefined],
    ['bad sampled', { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': 'maybe' }, undefined],
    ['bad parent', { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-parentspanid': 'nothex!!nothex!!' }, undefined],
    ['17-char trace id', { 'x-b3-traceid': 'a'.repeat(17), 'x-b3-spanid': S }, undefined],
    ['nothing', {}, undefined],
  ];
  for (const [name, headers, want] of cases) assert.deepEqual(parseB3Multi(headers), want, name);
});

test('extract precedence: traceparent, then b3, then x-b3-*; invalid falls through', () => {
  const other = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
  const both = { traceparent: `00-${T}-${S}-01`, b3: `${other}-${P}-0`, 'x-b3-traceid': other, 'x-b3-spanid': P };
  assert.equal((extractTraceContext(both) as { format: string }).format, 'w3c');
  const badW3c = { ...both, traceparent: 'garbage' };
  assert.equal((extractTraceContext(badW3c) as { format: string }).format, 'b3-single');
  const multiOnly = { traceparent: 'garbage', b3: 'garbage', 'x-b3-traceid': other, 'x-b3-spanid': P };
  assert.equal((extractTraceContext(multiOnly) as { format: string }).format, 'b3-multi');
  assert.equal(extractTraceContext({ traceparent: 'x', b3: 'y' }), undefined);
});

test('inject then extract round-trips through every format', () => {
  const contexts = [
    { traceId: T, spanId: S, sampled: true },
    { traceId: T, spanId: S, sampled: false, parentSpanId: P },
    { traceId: T, spanId: S, sampled: true, debug: true, traceState: 'a=b' },
  ];
  for (const ctx of contexts) {
    const h = injectTraceContext(ctx, {} as Record<string, string>, true);
    const w3c = parseTraceparent(h.traceparent, h.tracestate);
    assert.equal(w3c?.traceId, ctx.traceId);
    assert.equal(w3c?.spanId, ctx.spanId);
    assert.equal(w3c?.sampled, ctx.sampled);
    assert.equal(w3c?.traceState, ctx.traceState);
    const single = parseB3Single(h.b3) as { context: typeof ctx };
    assert.equal(single.context.spanId, ctx.spanId);
    assert.equal(single.context.sampled, ctx.sampled);
    assert.equal(single.context.parentSpanId, ctx.parentSpanId);
    const multi = parseB3Multi(h) as { context: typeof ctx };
    assert.equal(multi.context.traceId, ctx.traceId);
    assert.equal(multi.context.parentSpanId, ctx.parentSpanId);
    assert.equal(multi.context.sampled, ctx.sampled);
    if (ctx.debug) assert.equal(h['x-b3-sampled'], undefined, 'debug implies sampled; B3 says do not send both');
    // The single b3 header goes on only for a trace that arrived in it.
    assert.equal(injectTraceContext(ctx).b3, undefined);
  }
});
