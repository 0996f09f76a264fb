import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { SamplingDecision } from '@opentelemetry/sdk-trace-base';
import { samplerFromEnv } from './otel-sdk.js';
import type { ParentRef } from './span-record.js';
import { parseParent } from './trace-context.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const parents: (ParentRef | undefined)[] = [
  undefined,
  parseParent(`00-${TRACE}-00f067aa0ba902b7-01`, ''),
  parseParent(`00-${TRACE}-00f067aa0ba902b7-00`, ''),
];

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) if (v === undefined) delete process.env[k];
  else process.env[k] = v;
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

describe('samplerFromEnv', () => {
  for (const name of [undefined, 'always_on', 'always_off', 'parentbased_always_on', 'parentbased_always_off', 'traceidratio', 'parentbased_traceidratio']) {
    it(`${name ?? '(unset)'}: the shortcut decides as the SDK's sampler does, for no parent and a sampled or unsampled remote parent`, () => {
      const { sampler, fixedDecision } = withEnv({ OTEL_TRACES_SAMPLER: name, OTEL_TRACES_SAMPLER_ARG: '0.5' }, () => samplerFromEnv());
      if (name?.includes('traceidratio')) {
        assert.equal(fixedDecision, undefined, 'a ratio sampler is always asked');
        return;
      }
      assert.ok(fixedDecision);
      for (const p of parents) {
        const ctx = p === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, { traceId: p.trace.hex, spanId: '00f067aa0ba902b7', traceFlags: p.traceFlags, isRemote: true });
        const sdk = sampler.shouldSample(ctx, TRACE, 'GET', SpanKind.SERVER, {}, []).decision === SamplingDecision.RECORD_AND_SAMPLED;
        assert.equal(fixedDecision(p), sdk, `parent ${p === undefined ? 'none' : p.traceFlags}`);
      }
    });
  }

  it('an unknown sampler or an out-of-range ratio is reported and the default used', () => {
    const problems: { message: string }[] = [];
    withEnv({ OTEL_TRACES_SAMPLER: 'jaeger_remote', OTEL_TRACES_SAMPLER_ARG: undefined }, () => samplerFromEnv(problems as never));
    withEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '7' }, () => samplerFromEnv(problems as never));
    assert.equal(problems.length, 2);
    assert.match(problems[0]!.message, /jaeger_remote.*parentbased_always_on/);
    assert.match(problems[1]!.message, /OTEL_TRACES_SAMPLER_ARG=7/);
  });
});
