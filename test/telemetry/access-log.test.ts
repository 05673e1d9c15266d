import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import {
  AccessLogWriter,
  compileAccessLogFormat,
  ISTIO_TEXT_FORMAT,
  formatAccessLogJson,
  formatAccessLogText,
  subscribeAccessLog,
  type AccessLogSink,
} from '../../src/telemetry/access-log.js';
import type { TelemetryRequestEvent } from '../../src/telemetry/events.js';

const full: TelemetryRequestEvent = {
  listener: 'virtualOutbound',
  direction: 'outbound',
  requestId: '9bd8e1c4-7b5b-4c55-a4d4-3e2c1f2a9c11',
  method: 'GET',
  authority: 'reviews:9080',
  path: '/reviews/0',
  originalPath: '/api/reviews/0',
  protocol: 'HTTP/1.1',
  route: 'default',
  cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local',
  upstreamHost: '10.0.0.7:9080',
  status: 200,
  flags: '-',
  details: 'via_upstream',
  downstreamPeer: '10.0.0.5:51234',
  attempts: 1,
  requestBytes: 0,
  responseBytes: 295,
  startTime: Date.UTC(2026, 10, 22, 1, 2, 3, 456),
  upstreamMs: 11.6,
  durationMs: 12.4,
  userAgent: 'curl/8.5.0',
  xForwardedFor: '10.0.0.1',
  upstreamLocal: '10.0.0.5:40022',
  downstreamLocal: '10.0.0.5:15001',
  requestedServerName: 'outbound_.9080_.v2_.reviews.default.svc.cluster.local',
};

const minimal: TelemetryRequestEvent = {
  listener: 'virtualInbound',
  direction: 'inbound',
  requestId: '',
  method: 'POST',
  authority: 'ratings:9080',
  path: '/x',
  protocol: 'HTTP/2',
  status: 503,
  flags: 'UF,URX',
  downstreamPeer: '127.0.0.1:9',
  attempts: 3,
  requestBytes: 12,
  responseBytes: 19,
  startTime: Date.UTC(2026, 0, 1),
  durationMs: 3,
};

test('text format is Istio\'s default, with - for what is missing', () => {
  assert.equal(
    formatAccessLogText(full),
    '[2026-11-22T01:02:03.456Z] "GET /api/reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 295 12 11 "10.0.0.1" "curl/8.5.0" ' +
      '"9bd8e1c4-7b5b-4c55-a4d4-3e2c1f2a9c11" "reviews:9080" "10.0.0.7:9080" outbound|9080|v2|reviews.default.svc.cluster.local ' +
      '10.0.0.5:40022 10.0.0.5:15001 10.0.0.5:51234 outbound_.9080_.v2_.reviews.default.svc.cluster.local default',
  );
  assert.equal(
    formatAccessLogText(minimal),
    '[2026-01-01T00:00:00.000Z] "POST /x HTTP/2" 503 UF,URX - - "-" 12 19 3 - "-" "-" "-" "ratings:9080" "-" - - - 127.0.0.1:9 - -',
  );
  // A client cannot forge a second line or break out of a quoted field.
  const evil = formatAccessLogText({ ...minimal, userAgent: 'x"\n[2026-01-01T00:00:00.000Z] "GET / HTTP/1.1" 200' });
  assert.equal(evil.split('\n').length, 1);
  assert.ok(evil.includes('"x\\"\\x0a[2026'));
});

test('JSON format has the same fields under Istio\'s keys, null when missing', () => {
  assert.deepEqual(JSON.parse(formatAccessLogJson(full)), {
    start_time: '2026-11-22T01:02:03.456Z',
    method: 'GET',
    path: '/api/reviews/0',
    protocol: 'HTTP/1.1',
    response_code: 200,
    response_flags: '-',
    response_code_details: 'via_upstream',
    connection_termination_details: null,
    upstream_transport_failure_reason: null,
    bytes_received: 0,
    bytes_sent: 295,
    duration: 12,
    upstream_service_time: 11,
    x_forwarded_for: '10.0.0.1',
    user_agent: 'curl/8.5.0',
    request_id: '9bd8e1c4-7b5b-4c55-a4d4-3e2c1f2a9c11',
    authority: 'reviews:9080',
    upstream_host: '10.0.0.7:9080',
    upstream_cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local',
    upstream_local_address: '10.0.0.5:40022',
    downstream_local_address: '10.0.0.5:15001',
    downstream_remote_address: '10.0.0.5:51234',
    requested_server_name: 'outbound_.9080_.v2_.reviews.default.svc.cluster.local',
    route_name: 'default',
  });
  const m = JSON.parse(formatAccessLogJson(minimal));
  assert.equal(m.request_id, null);
  assert.equal(m.upstream_service_time, null);
  assert.equal(m.response_flags, 'UF,URX');
});

/** A sink that accepts writes only when told to: the slow disk or pipe. */
class GatedSink extends Writable {
  readonly lines: string[] = [];
  private held: (() => void)[] = [];
  constructor() {
    super({ highWaterMark: 64, decodeStrings: false });
  }
  override _write(chunk: string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.lines.push(String(chunk));
    this.held.push(() => cb());
  }
  release(): void {
    const h = this.held;
    this.held = [];
    for (const f of h) f();
  }
}

test('writer never blocks: buffers while the sink is slow, drops and counts beyond the bound', async () => {
  const sink = new GatedSink();
  const writer = new AccessLogWriter(sink, { maxBufferBytes: 300 });
  const line = 'x'.repeat(99); // 100 bytes with the newline
  for (let i = 0; i < 10; i++) writer.write(line);
  // One line reached the stream (then it asked us to wait), three fit in the buffer, six dropped.
  assert.equal(writer.stats.written, 1);
  assert.equal(writer.stats.dropped, 6);
  const closing = writer.close();
  // Let the sink go: release repeatedly until the buffered lines are through.
  while (sink.lines.length < 4) {
    sink.release();
    await new Promise<void>((r) => setImmediate(r));
  }
  sink.release();
  await closing;
  assert.equal(writer.stats.written, 4);
  assert.equal(sink.lines.length, 4);
  writer.write('after close');
  assert.equal(writer.stats.dropped, 7);
});

test('writer survives a sink that errors', async () => {
  const broken = new Writable({
    write(_c, _e, cb) {
      cb(new Error('disk full'));
    },
  });
  const writer = new AccessLogWriter(broken);
  writer.write('a');
  await new Promise<void>((r) => setImmediate(r));
  writer.write('b');
  assert.equal(writer.stats.dropped, 1);
  await writer.close();
});

test('subscribeAccessLog writes each published request to a file, in the chosen format, until turned off', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sinew-al-'));
  const file = path.join(dir, 'access.log');
  try {
    const channel = diagnosticsChannel.channel('sinew:proxy:request');
    const off = subscribeAccessLog({ enabled: true, format: 'json', path: file });
    channel.publish(full);
    channel.publish(minimal);
    await off();
    channel.publish(full);
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 2);
    assert.equal(JSON.parse(lines[0]).request_id, full.requestId);
    assert.equal(JSON.parse(lines[1]).response_code, 503);

    // An injected sink, text format; disabled settings subscribe nothing.
    const got: string[] = [];
    const sink: AccessLogSink = { write: (l) => void got.push(l), close: async () => undefined, stats: { written: 0, dropped: 0 } };
    const offDisabled = subscribeAccessLog({ enabled: false, format: 'text' }, sink);
    const offText = subscribeAccessLog({ enabled: true, format: 'text' }, sink);
    channel.publish(minimal);
    await offText();
    await offDisabled();
    assert.deepEqual(got, [formatAccessLogText(minimal)]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// === Envoy's command operators (custom formats of envoyFileAccessLog providers) ===

test('Istio\'s default text format through the operator formatter is exactly the default writer\'s line', () => {
  const generic = compileAccessLogFormat({ format: 'text', text: ISTIO_TEXT_FORMAT, omitEmptyValues: false });
  // A text given explicitly goes through the formatter, not the fast path.
  assert.notEqual(generic, formatAccessLogText);
  for (const e of [full, minimal, { ...full, query: 'a=1&b=2' }]) assert.equal(generic(e), formatAccessLogText(e));
});

test('Envoy\'s documented default format and example line (configuration/observability/access_log/usage)', () => {
  const envoyDefault =
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ' +
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';
  const e: TelemetryRequestEvent = {
    ...minimal,
    startTime: Date.parse('2016-04-15T20:17:00.310Z'),
    method: 'POST',
    path: '/api/v1/locations',
    protocol: 'HTTP/2',
    status: 204,
    flags: '-',
    requestBytes: 154,
    responseBytes: 0,
    durationMs: 226.9,
    upstreamMs: 100,
    requestHeaders: { 'x-forwarded-for': '10.0.35.28', 'user-agent': 'nsq2http', 'x-request-id': 'cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2' },
    authority: 'locations',
    upstreamHost: 'tcp://10.0.2.1:80',
  };
  assert.equal(
    compileAccessLogFormat({ format: 'text', text: envoyDefault })(e),
    '[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80"',
  );
  // START_TIME formats (%s.%3f is Envoy's example), the A?B fallback, max lengths, a missing header as -.
  const custom = compileAccessLogFormat({ format: 'text', text: '%START_TIME(%s.%3f)% %START_TIME(%Y/%m/%dT%H:%M:%S%z)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %REQ(USER-AGENT):3% %REQ(X-NONE)% %REQ_WITHOUT_QUERY(:PATH)%' });
  assert.equal(custom({ ...e, query: 'q=1', originalPath: undefined }), '1460751420.310 2016/04/15T20:17:00+0000 /api/v1/locations?q=1 nsq - /api/v1/locations');
});

test('JSON labels: one operator keeps its type, unset is null, text around operators makes a string (Envoy json_format)', () => {
  const f = compileAccessLogFormat({ format: 'json', labels: { protocol: '%PROTOCOL%', duration: '%DURATION%', my_custom_header: '%REQ(MY_CUSTOM_HEADER)%', missing: '%REQ(X-NONE)%', upstream: { cluster: '%UPSTREAM_CLUSTER%', when: 'took %DURATION%ms' } } });
  const e = { ...minimal, protocol: 'HTTP/1.1', durationMs: 123.4, requestHeaders: { my_custom_header: 'value_of_MY_CUSTOM_HEADER' }, cluster: 'outbound|80||a' };
  assert.deepEqual(JSON.parse(f(e)), { protocol: 'HTTP/1.1', duration: 123, my_custom_header: 'value_of_MY_CUSTOM_HEADER', missing: null, upstream: { cluster: 'outbound|80||a', when: 'took 123ms' } });
  const omit = compileAccessLogFormat({ format: 'json', labels: { a: '%REQ(X-NONE)%', b: '%RESPONSE_CODE%' }, omitEmptyValues: true });
  assert.deepEqual(JSON.parse(omit({ ...minimal, status: 200 })), { b: 200 });
});

test('a format Envoy would refuse is refused: unknown operator, operator without its argument, a stray %', () => {
  assert.throws(() => compileAccessLogFormat({ format: 'text', text: '%NOPE%' }), /%NOPE% at position 0 is not a command operator Envoy has/);
  assert.throws(() => compileAccessLogFormat({ format: 'text', text: 'x %REQ% y' }), /needs an argument/);
  assert.throws(() => compileAccessLogFormat({ format: 'text', text: '100% done' }), /does not start a command operator/);
});
