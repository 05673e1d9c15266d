/**
 * The Gateway API conformance runner (test/gateway-api/conformance/): the suite as the
 * repository carries it, the report in the suite's format, and — against a real `sinew up` —
 * one gateway test and one mesh (GAMMA) test of the suite, plus the proof that the runner fails
 * a test whose expectation the mesh does not meet. The whole suite runs with
 * `npm run conformance` (a few minutes); its report is in the README.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { casesJson, transcribeSuite } from '../../scripts/gen-gateway-api-conformance.js';
import { referenceCorpus } from '../support/reference-corpus.js';
import { ConformanceRunner } from './conformance/runner.js';
import { PROFILES, sinewDeclaration } from './conformance/declaration.js';
import { buildReport, fixturesDir, loadSuite, profilesOf, reportTable, skipReason, type ConformanceTest, type Outcome } from './conformance/suite.js';

const suite = loadSuite();
const named = (name: string): ConformanceTest => {
  const t = suite.tests.find((x) => x.shortName === name);
  assert.ok(t, `no test ${name}`);
  return t;
};

describe('the suite as the repository carries it', () => {
  test('every test of the gateway and mesh profiles, with its steps worked out', () => {
    assert.ok(suite.tests.length >= 150, `${suite.tests.length} tests`);
    const simple = named('HTTPRouteSimpleSameNamespace');
    assert.deepEqual(simple.features, ['Gateway', 'HTTPRoute']);
    assert.deepEqual(
      simple.steps.map((s) => s.call),
      ['kubernetes.GatewayAndHTTPRoutesMustBeAccepted', 'kubernetes.HTTPRouteMustHaveResolvedRefsConditionsTrue', 'http.MakeRequestAndExpectEventuallyConsistentResponse'],
    );
    const request = simple.steps[2].args?.[4] as Record<string, unknown>;
    assert.deepEqual(request, { Request: { Path: '/' }, Response: { StatusCode: 200 }, Backend: 'infra-backend-v1', Namespace: 'gateway-conformance-infra' });
  });

  test('a loop of the test over what the run fetched is transcribed as a value the runner works out, not dropped', () => {
    // gateway-modify-listeners.go keeps the "http" listener of the fetched Gateway
    const removing = named('GatewayModifyListeners').steps.filter((s) => s.subtest?.[0].startsWith('should be able to remove'));
    const copy = removing.find((s) => s.call === 'original.DeepCopy')!;
    const set = removing.find((s) => s.call === '$set')!;
    const elem = (set.args?.[1] as { elem: number }).elem;
    assert.equal(set.receiver, copy.id);
    assert.deepEqual(set.args?.[1], { $filter: { $of: { $ref: copy.id }, $field: ['Spec', 'Listeners'] }, elem, $where: { $cmp: '==', x: { $of: { $ref: elem }, $field: ['Name'] }, y: 'http' } });
    // gateway-static-addresses.go's filterAddr returns its named result: the addresses but one
    const [patch] = named('GatewayStaticAddresses').steps.filter((s) => s.call === '$set');
    assert.ok(patch.args?.[1] && typeof patch.args[1] === 'object' && '$filter' in (patch.args[1] as object), JSON.stringify(patch.args?.[1]));
    // require.Eventually's closure: it fetches the Gateway and returns len(Status.Addresses) == 1
    const eventually = named('GatewayStaticAddresses').steps.find((s) => s.call === 'require.Eventually');
    const closure = eventually?.args?.[1] as { steps: { id: number; call: string }[]; returns?: unknown };
    assert.equal(closure.steps[0].call, 's.Client.Get');
    assert.deepEqual(closure.returns, { $cmp: '==', x: { $len: { $of: { $ref: closure.steps[0].id }, $field: ['Status', 'Addresses'] } }, y: 1 });
  });

  test('an expression switch is followed where its tag is known (HTTPRouteListenerPortMatching picks the gateway address by the Host port)', () => {
    const steps = named('HTTPRouteListenerPortMatching').steps;
    assert.ok(steps.every((s) => !s.unsupported), JSON.stringify(steps.filter((s) => s.unsupported)));
    const accepted = steps.filter((s) => s.call === 'kubernetes.GatewayAndHTTPRoutesMustBeAccepted').map((s) => s.id);
    const requests = steps.filter((s) => s.call === 'http.MakeRequestAndExpectEventuallyConsistentResponse');
    const target = (host: string) => (requests.find((r) => (r.args?.[4] as { Request: { Host: string } }).Request.Host === host)?.args?.[3] as { $ref: number }).$ref;
    // listener-1 (port 80) for foo.com, listener-2 (8080) and listener-4 (8090) by the port in the Host
    assert.deepEqual([target('foo.com'), target('foo.com:8080'), target('bar.com:8090')], accepted);
  });

  test('HTTPRouteRetry: each probe of AwaitConvergence asks the retry simulation with its url.Values and a fresh uuid', () => {
    const awaits = named('HTTPRouteRetry').steps.filter((st) => st.call === 'http.AwaitConvergence');
    assert.equal(awaits.length, 11);
    const probe = (awaits[0].args?.[2] as { steps: { call: string; args: unknown[] }[] }).steps;
    assert.deepEqual(probe.map((st) => st.call), ['http.MakeRequest', 'suite.RoundTripper.CaptureRoundTrip', 'http.CompareRoundTrip']);
    assert.deepEqual((probe[0].args[1] as { Request: unknown }).Request, { Path: { $concat: ['/retry/code-500-attempts-3?', { $urlencode: { responseCode: ['500'], succeedAfter: ['2'], uuid: [{ $uuid: true }] } }] } });
  });

  test('regression: a helper package the test file imports under another name is transcribed (BackendTLSPolicy\'s `h.MakeRequestAndExpectFailure` steps were dropped)', () => {
    const steps = named('BackendTLSPolicy').steps;
    const requests = steps.filter((s) => s.call?.startsWith('http.MakeRequestAndExpect')).map((s) => `${s.call} ${(s.args?.[4] as { Request: { Path: string } }).Request.Path}`);
    assert.deepEqual(requests, [
      'http.MakeRequestAndExpectEventuallyConsistentResponse /backendtlspolicy',
      'http.MakeRequestAndExpectFailure /backendtlspolicy-host-mismatch',
      'http.MakeRequestAndExpectFailure /backendtlspolicy-cert-mismatch',
    ]);
  });

  test('regression: a client a test passes to its own helper is the suite\'s client (BackendTLSPolicy\'s patchConfigMapCACert fetched and patched nothing)', () => {
    const steps = named('BackendTLSPolicy').steps;
    const get = steps.find((s) => s.call === 'suite.Client.Get' && (s.args?.[1] as { Name: string }).Name === 'tls-checks-ca-certificate-reconcile-test')!;
    const copy = steps.find((s) => s.receiver === get.id && s.call?.endsWith('.DeepCopy'))!;
    assert.ok(copy, JSON.stringify(steps.filter((s) => s.call?.startsWith('c.'))));
    assert.ok(steps.some((s) => s.call === '$set' && s.receiver === copy.id && JSON.stringify(s.args?.[0]) === JSON.stringify(['Data', 'ca.crt'])));
    assert.ok(steps.some((s) => s.call === 'suite.Client.Patch' && JSON.stringify(s.args?.[1]) === JSON.stringify({ $ref: copy.id })));
  });

  test('profiles count a test where all its features are, as extended when one of them is', () => {
    assert.deepEqual(profilesOf(suite, named('HTTPRouteSimpleSameNamespace')).find((p) => p.profile === 'GATEWAY-HTTP'), { profile: 'GATEWAY-HTTP', extended: false });
    assert.deepEqual(profilesOf(suite, named('HTTPRouteMethodMatching')).map((p) => p.profile + (p.extended ? ' extended' : ' core')), ['GATEWAY-HTTP extended']);
    assert.deepEqual(profilesOf(suite, named('MeshHTTPRouteRedirectPort')).map((p) => p.profile + (p.extended ? ' extended' : ' core')), ['MESH-HTTP extended']);
    assert.deepEqual(profilesOf(suite, named('TLSRouteSimpleSameNamespace')).map((p) => p.profile), ['GATEWAY-TLS']);
  });

  test('tests that need TLS listeners to terminate or client certificates are skipped with the reason; HTTPS listener, TLS passthrough and the other tests run', () => {
    const declaration = sinewDeclaration(suite);
    assert.match(String(skipReason(named('TLSRouteTerminateSimpleSameNamespace'), declaration)), /unsupported features: TLSRouteModeTerminate/);
    assert.equal(skipReason(named('TLSRouteSimpleSameNamespace'), declaration), undefined);
    assert.equal(skipReason(named('TLSRouteHostnameIntersection'), declaration), undefined);
    assert.match(String(skipReason(named('GatewayTLSBackendClientCertificate'), declaration)), /unsupported features: GatewayBackendClientCertificate/);
    assert.equal(skipReason(named('HTTPRouteHTTPSListener'), declaration), undefined);
    assert.equal(skipReason(named('HTTPRouteSimpleSameNamespace'), declaration), undefined);
    assert.equal(skipReason(named('MeshHTTPRouteWeight'), declaration), undefined);
  });

  test('the report counts passed, failed and skipped per profile, core and extended, in the suite format', () => {
    const outcomes = new Map<string, Outcome>([
      ['HTTPRouteSimpleSameNamespace', { result: 'passed' }],
      ['HTTPRouteMethodMatching', { result: 'failed', reason: 'x' }],
      ['TLSRouteSimpleSameNamespace', { result: 'skipped', reason: 'y' }],
    ]);
    const report = buildReport(suite, PROFILES, outcomes, sinewDeclaration(suite), { organization: 'sinew', project: 'sinew', version: 'test' });
    const profiles = report.profiles as { name: string; core: Record<string, any>; extended: Record<string, any> }[];
    const http = profiles.find((p) => p.name === 'GATEWAY-HTTP')!;
    assert.deepEqual(http.core.statistics, { Passed: 1, Failed: 0, Skipped: 0 });
    assert.deepEqual(http.extended.statistics, { Passed: 0, Failed: 1, Skipped: 0 });
    assert.deepEqual(http.extended.failedTests, ['HTTPRouteMethodMatching']);
    assert.equal(http.extended.result, 'failure');
    assert.ok(http.extended.supportedFeatures.includes('HTTPRouteMethodMatching'));
    assert.ok(http.extended.supportedFeatures.includes('BackendTLSPolicy'));
    assert.ok(http.extended.unsupportedFeatures.includes('ListenerSet'));
    const tls = profiles.find((p) => p.name === 'GATEWAY-TLS')!;
    // HTTPRouteSimpleSameNamespace needs HTTPRoute, which is no feature of GATEWAY-TLS: it does not count there
    assert.deepEqual(tls.core.statistics, { Passed: 0, Failed: 0, Skipped: 1 });
    assert.match(reportTable(report), /\| GATEWAY-HTTP \| 1 \/ 0 \/ 0 \| 0 \/ 1 \/ 0 \|/);
  });

  test('a step\'s second result and an early return are transcribed, not lost (the TLSRoute tests: `gwAddr, hostnames := ...`, `if suite.SupportedFeatures.Has(...) { return }`)', () => {
    const simple = named('TLSRouteSimpleSameNamespace').steps;
    const accepted = simple.find((st) => st.call === 'kubernetes.GatewayAndTLSRoutesMustBeAccepted')!;
    const request = simple.find((st) => st.call === 'tcp.MakeTCPRequestAndExpectEventuallyValidResponse')!;
    // serverStr := string(hostnames[0]); the CA is caConfigMap["ca.crt"]
    assert.deepEqual(request.args?.[4], { $of: { $ref: accepted.id }, $field: ['$1', 0] });
    assert.deepEqual((request.args?.[3] as { $field: unknown }).$field, ['ca.crt']);
    const terminate = named('TLSRouteListenerTerminateNotSupported').steps;
    assert.deepEqual(terminate.slice(0, 2).map((st) => st.call), ['suite.SupportedFeatures.Has', '$returnIf']);
  });

  test('cases.json is what the generator writes from the upstream suite', { skip: referenceCorpus.skip }, () => {
    const transcribed = transcribeSuite(referenceCorpus.path('gateway-api'), suite.source.commit);
    assert.deepEqual(transcribed.problems, []);
    assert.ok(casesJson(transcribed) === readFileSync(join(fixturesDir, 'cases.json'), 'utf8'), 'stale: run npx tsx scripts/gen-gateway-api-conformance.ts <gateway-api checkout> --commit <commit>');
  });
});

describe('the runner against sinew up', { timeout: 300_000 }, () => {
  // Only the backends these tests use: infra-backend-v1 to -v3 for the gateway tests, the TCP
  // echo for the TLSRoute ones, the mesh's echo-v1 and echo-v2 (echo-v1 exists in two
  // namespaces, as in the suite), and the TLS backend for BackendTLSPolicy.
  const runner = new ConformanceRunner({
    backends: ['infra-backend-v1', 'infra-backend-v2', 'infra-backend-v3', 'tcp-backend', 'echo-v1', 'echo-v2', 'tls-backend'],
    timeoutMs: 20_000,
    supportedFeatures: sinewDeclaration(suite).supported,
  });
  before(() => runner.start());
  after(() => runner.stop());

  test('HTTPRouteSimpleSameNamespace passes: the route is accepted, its refs resolved, its request answered by infra-backend-v1', async () => {
    const outcome = await runner.run(named('HTTPRouteSimpleSameNamespace'));
    assert.deepEqual(outcome, { result: 'passed' }, runner.log().slice(-3000));
  });

  test('MeshHTTPRouteSimpleSameNamespace passes: the HTTPRoute on Service echo sends its mesh traffic to echo-v1 only', async () => {
    const outcome = await runner.run(named('MeshHTTPRouteSimpleSameNamespace'));
    assert.deepEqual(outcome, { result: 'passed' }, runner.log().slice(-3000));
  });

  test('regression: a header a route adds to one the client sent reaches the backend as a second value (the sidecar joined them into one: HTTPRouteRequestHeaderModifier)', async () => {
    const outcome = await runner.run(named('HTTPRouteRequestHeaderModifier'));
    assert.deepEqual(outcome, { result: 'passed' }, runner.log().slice(-3000));
  });

  test('regression: the Patch step writes the patched Gateway (GatewayModifyListeners and GatewayStaticAddresses were refused: the loops that change it were lost)', async () => {
    for (const name of ['GatewayModifyListeners', 'GatewayStaticAddresses']) {
      const outcome = await runner.run(named(name));
      assert.deepEqual(outcome, { result: 'passed' }, `${name}: ${runner.log().slice(-3000)}`);
    }
  });

  test('regression: a route reaches Services without a selector through the EndpointSlices written for them, headless or not (HTTPRouteServiceTypes: the slices were skipped)', async () => {
    const outcome = await runner.run(named('HTTPRouteServiceTypes'));
    assert.deepEqual(outcome, { result: 'passed' }, runner.log().slice(-3000));
  });

  test('HTTPRouteBackendProtocolH2C passes: an h2c request reaches the Service port that targets the backend\'s second container port (its app told where by PORT_3001)', async () => {
    const outcome = await runner.run(named('HTTPRouteBackendProtocolH2C'));
    assert.deepEqual(outcome, { result: 'passed' }, runner.log().slice(-3000));
  });

  test('a check the test makes with t.Fatalf on what the backend saw is carried out: it passes as the route is written, and fails when it does not hold', async () => {
    // HTTPRouteRequestHeaderModifierBackendWeights: each backendRef sets a Backend header naming its pod
    const original = named('HTTPRouteRequestHeaderModifierBackendWeights');
    const firstCapture = original.steps.findIndex((st) => st.call?.endsWith('.CaptureRoundTrip'));
    const short: ConformanceTest = { ...original, steps: original.steps.slice(0, firstCapture + 3) };
    assert.deepEqual(await runner.run(short), { result: 'passed' }, runner.log().slice(-3000));
    const wrong: ConformanceTest = JSON.parse(JSON.stringify(short));
    // the pod must now start with a name no backend has
    const check = wrong.steps.find((st) => st.call === '$failIf' && JSON.stringify(st.args).includes('strings.HasPrefix'))!;
    ((check.args![0] as { $not: { args: unknown[] } }).$not.args)[1] = 'no-such-backend';
    const outcome = await runner.run(wrong);
    assert.equal(outcome.result, 'failed');
    assert.match((outcome as { reason: string }).reason, /expected the backendRef to have set the correct headers/);
  });

  test('HTTPRouteRetry passes: a route retries 500s up to its attempts, and not the codes it does not name', async () => {
    const outcome = await runner.run(named('HTTPRouteRetry'));
    assert.deepEqual(outcome, { result: 'passed' }, runner.log().slice(-3000));
  });

  test('HTTPRouteBackendProtocolWebSocket passes: a text and a binary frame come back through the gateway as sent', async () => {
    const steps = (named('HTTPRouteBackendProtocolWebSocket').steps.find((st) => st.call === 'http.AwaitConvergence')?.args?.[2] as { steps: { call: string }[] }).steps;
    // the frames' comparisons are steps of the attempt, not lost
    assert.equal(steps.filter((st) => st.call === '$failIf').length, 2);
    const outcome = await runner.run(named('HTTPRouteBackendProtocolWebSocket'));
    assert.deepEqual(outcome, { result: 'passed' }, runner.log().slice(-3000));
  });

  test('BackendTLSPolicy passes: the gateway re-encrypts to the TLS backend with the policy\'s SNI, verifies it against the ConfigMap\'s CA, refuses it under another CA, and follows the ConfigMap as it changes', async () => {
    const outcome = await runner.run(named('BackendTLSPolicy'));
    assert.deepEqual(outcome, { result: 'passed' }, runner.log().slice(-3000));
  });

  test('GatewayFrontendClientCertificateValidation passes: each HTTPS port lets in the client certificates of its CA and refuses the others\' handshakes', async () => {
    const outcome = await runner.run(named('GatewayFrontendClientCertificateValidation'));
    assert.deepEqual(outcome, { result: 'passed' }, runner.log().slice(-3000));
  });

  test('HTTPRouteRequestMultipleMirrors passes: each mirror backend\'s log shows the request; a backend that was not mirrored to fails the test', async () => {
    const original = named('HTTPRouteRequestMultipleMirrors');
    assert.deepEqual(await runner.run(original), { result: 'passed' }, runner.log().slice(-3000));
    const wrong: ConformanceTest = JSON.parse(JSON.stringify(original));
    const watch = wrong.steps.find((st) => st.call === 'http.ExpectMirroredRequest')!;
    // a backend the route does not mirror to
    ((watch.args![3] as { BackendRef: { Name: string } }[])[1].BackendRef).Name = 'web-backend';
    const saved = runner.timeoutMs;
    runner.timeoutMs = 3000;
    try {
      const outcome = await runner.run(wrong);
      assert.equal(outcome.result, 'failed');
      assert.match((outcome as { reason: string }).reason, /Couldn't find mirrored request to \/multi-mirror in the logs of gateway-conformance-infra\/web-backend/);
    } finally {
      runner.timeoutMs = saved;
    }
  });

  test('TLSRouteSimpleSameNamespace passes: the TCP echo behind a TLS Passthrough listener terminated the TLS itself, with the SNI the client sent', async () => {
    const outcome = await runner.run(named('TLSRouteSimpleSameNamespace'));
    assert.deepEqual(outcome, { result: 'passed' }, runner.log().slice(-3000));
  });

  test('the TCP echo\'s answer is checked: expecting another backend behind the TLSRoute fails, saying why', async () => {
    const wrong: ConformanceTest = JSON.parse(JSON.stringify(named('TLSRouteSimpleSameNamespace')));
    const request = wrong.steps.find((st) => st.call === 'tcp.MakeTCPRequestAndExpectEventuallyValidResponse')!;
    (request.args![6] as Record<string, unknown>).Backend = 'tls-backend';
    // The check polls for the suite's 30 s; the last answer it saw is the reason.
    const outcome = await runner.run(wrong);
    assert.equal(outcome.result, 'failed');
    assert.match((outcome as { reason: string }).reason, /backend name does not match with pod prefix: pod=tcp-backend-\d+ backend=tls-backend/);
  });

  test('TLSRoute status and rejection: a nonexistent backend (BackendNotFound, the connection closed) and a TLS listener in Terminate mode (not Accepted)', async () => {
    for (const name of ['TLSRouteInvalidBackendRefNonexistent', 'TLSRouteListenerTerminateNotSupported']) {
      const outcome = await runner.run(named(name));
      assert.deepEqual(outcome, { result: 'passed' }, `${name}: ${runner.log().slice(-3000)}`);
    }
  });

  test('a test whose expectation the mesh does not meet fails, saying why', async () => {
    const original = named('HTTPRouteSimpleSameNamespace');
    const wrong: ConformanceTest = JSON.parse(JSON.stringify(original));
    (wrong.steps[2].args![4] as Record<string, unknown>).Backend = 'infra-backend-v2';
    const saved = runner.timeoutMs;
    runner.timeoutMs = 3000;
    try {
      const outcome = await runner.run(wrong);
      assert.equal(outcome.result, 'failed');
      assert.match((outcome as { reason: string }).reason, /expected pod name to start with infra-backend-v2, got infra-backend-v1/);
    } finally {
      runner.timeoutMs = saved;
    }
  });
});
