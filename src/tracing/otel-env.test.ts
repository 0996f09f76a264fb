import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exporterProblems, limitProblems, otlpProtocol, tracingEnabled, type EnvProblem } from './otel-env.js';

describe('tracingEnabled', () => {
  it('is off without an OTLP endpoint, whatever else is set', () => {
    assert.equal(tracingEnabled({}), false);
    assert.equal(tracingEnabled({ OTEL_SERVICE_NAME: 'shop', OTEL_TRACES_SAMPLER: 'always_on' }), false);
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }), false);
  });
  it('is on with either endpoint variable', () => {
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true);
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }), true);
  });
  it('honours OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER=none', () => {
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }), false);
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'false' }), true);
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }), false);
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'otlp' }), true);
  });
});

describe('otlpProtocol', () => {
  it('defaults to http/protobuf, as the specification does', () => {
    assert.equal(otlpProtocol({}), 'http/protobuf');
  });
  it('takes the traces-specific variable before the general one', () => {
    assert.equal(otlpProtocol({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), 'grpc');
    assert.equal(otlpProtocol({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }), 'http/json');
  });
  it('reports a value it does not know (coded) and uses the default', () => {
    const problems: EnvProblem[] = [];
    assert.equal(otlpProtocol({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/xml' }, problems), 'http/protobuf');
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.code, 'OTEL_CONFIG');
    assert.match(problems[0]!.message, /OTEL_EXPORTER_OTLP_PROTOCOL="http\/xml"/);
  });
});

describe('exporterProblems', () => {
  it('names exporters other than otlp', () => {
    assert.deepEqual(exporterProblems({ OTEL_TRACES_EXPORTER: 'otlp' }), []);
    const p = exporterProblems({ OTEL_TRACES_EXPORTER: 'otlp, zipkin,console' });
    assert.equal(p.length, 1);
    assert.match(p[0]!.message, /zipkin, console/);
  });
});

describe('limitProblems', () => {
  it('names the count limits that are set, which Wharf does not apply', () => {
    assert.deepEqual(limitProblems({}), []);
    const [p] = limitProblems({ OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: '5' });
    assert.match(p!.message, /OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT is not applied/);
  });
});
