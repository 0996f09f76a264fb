/**
 * Where a worker's credential checks (ControlType.CredentialCheck) meet the main process's
 * credential service (src/security/credential-service.ts, created by server.ts): WAS hands each
 * checked request over and sends the answer back under the worker's id. A worker cannot make the
 * main process hold more than MAX_CHECKS_IN_FLIGHT checks at once: beyond that it is answered
 * 'throttled' at once, without asking anything.
 */
import type { CredentialRequest, CredentialResult } from '../ipc/credential-messages.js';

/** What checks credentials in the main process (CredentialService implements it). */
export interface CredentialChecker {
  check(request: CredentialRequest): Promise<CredentialResult>;
}

/** Checks one worker may have waiting in the main process. */
export const MAX_CHECKS_IN_FLIGHT = 64;

/** One worker as the broker sees it: where answers go, and its count of checks in flight. */
export interface CredentialAsker {
  readonly pid: number;
  readonly pool: string;
  credentialChecks: number;
  /** False once the worker is gone: its answers are dropped. */
  alive(): boolean;
  answer(id: number, result: CredentialResult): void;
}

export class CredentialBroker {
  readonly #checker: CredentialChecker | undefined;
  readonly #log: (level: 'warn' | 'error', message: string) => void;

  constructor(checker: CredentialChecker | undefined, log: (level: 'warn' | 'error', message: string) => void) {
    this.#checker = checker;
    this.#log = log;
  }

  check(from: CredentialAsker, id: number, request: CredentialRequest): void {
    const checker = this.#checker;
    if (checker === undefined) {
      from.answer(id, { ok: false, reason: 'unavailable', message: 'this server has no credential service' });
      return;
    }
    if (from.credentialChecks >= MAX_CHECKS_IN_FLIGHT) {
      from.answer(id, { ok: false, reason: 'throttled', message: `worker ${from.pid} already has ${MAX_CHECKS_IN_FLIGHT} credential checks waiting` });
      return;
    }
    from.credentialChecks++;
    checker.check(request).then(
      (result) => {
        from.credentialChecks--;
        if (from.alive()) from.answer(id, result);
      },
      (err: unknown) => {
        // A bug in the service: the request fails with 500, the server carries on.
        from.credentialChecks--;
        this.#log('error', `credential check for worker ${from.pid} of pool ${from.pool} failed: ${(err as Error)?.stack ?? String(err)}`);
        if (from.alive()) from.answer(id, { ok: false, reason: 'unavailable', message: 'the credential service failed' });
      },
    );
  }

  /** A request that did not check (credential-validate.ts): answered, so the worker does not wait, and logged. */
  refuse(from: CredentialAsker, id: number, problem: string): void {
    this.#log('warn', `worker ${from.pid} of pool ${from.pool} sent ${problem}; refused`);
    from.answer(id, { ok: false, reason: 'unavailable', message: `the main process refused ${problem}` });
  }
}
