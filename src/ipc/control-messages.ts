/**
 * The catalogue of WAS ↔ worker control messages, the second private channel a worker inherits
 * (fd 4) beside its request channel (fd 3, src/ipc/messages.ts). WAS owns this one and the
 * listener never sees it: health, readiness and what a worker asks of its pool go straight to the
 * activation service (IIS: WAS talks to w3wp over its own pipe, HTTP.sys only carries requests).
 *
 * Framing is the request channel's (src/ipc/channel.ts: [u32 length][u8 type][u32 stream]
 * [payload]); `stream` carries a small integer argument (a ping id), payloads are JSON.
 *
 * Shutdown stays on the request channel on purpose: "no more requests will come" must travel
 * behind the last request head the listener sent, on the same ordered stream, or a worker could
 * read it first, see nothing in flight and exit with requests still in its socket.
 *
 * Everything a worker sends here is untrusted (the worker runs the pool's code): each payload is
 * checked and bounded by `parseWorkerControl` before WAS looks at it.
 */

import type { CredentialRequest, CredentialResult } from './credential-messages.js';
import { parseCredentialRequest } from './credential-validate.js';

export const ControlType = {
  // WAS → worker
  /** Answer with Pong from the event loop (a busy or deadlocked worker does not). `stream`: the id. */
  Ping: 1,
  /** The answer to a CredentialCheck. `stream`: the check's id; payload: a JSON CredentialResult. */
  CredentialResult: 2,
  /** Wharf's user store changed: drop cached logons (a deleted user must not stay logged on). */
  CredentialsChanged: 3,
  // worker → WAS
  /** Configuration loaded and preloadEnabled applications warmed: the worker may take requests. */
  Ready: 20,
  /** `stream`: the ping's id. */
  Pong: 21,
  /** The worker asks for an overlapped recycle (a hosted app's watchedFiles changed, app_offline.htm appeared). */
  RecycleRequest: 22,
  /** What the pool's hosted application asks of WAS (iisnode's process count and shutdown time). */
  AppHints: 23,
  /**
   * The worker is about to exit and says why (the pool's code threw or called process.exit, its
   * configuration could not be loaded): WAS's exit line names the cause, not only the exit code.
   */
  Exiting: 24,
  /**
   * A module asks the main process to check credentials (src/ipc/credential-messages.ts).
   * `stream`: an id the worker chose, echoed by CredentialResult; payload: a JSON CredentialRequest.
   */
  CredentialCheck: 25,
} as const;

/** The messages WAS may receive: the keys a handler switch must cover. */
export type WorkerControlType = (typeof ControlType)['Ready' | 'Pong' | 'RecycleRequest' | 'AppHints' | 'Exiting' | 'CredentialCheck'];
export type WasControlType = (typeof ControlType)['Ping' | 'CredentialResult' | 'CredentialsChanged'];

/** The most workers AppHintsMessage.processes may ask for (the worker runs the pool's code). */
export const MAX_HINTED_PROCESSES = 64;
/** A recycle reason is one line of WAS's log: longer ones are cut. */
export const MAX_RECYCLE_REASON = 512;
/** An exit reason is one line of WAS's log too. */
export const MAX_EXIT_REASON = 512;
/** The most drain time a hosted app may ask for (a day; shutdownTimeLimit caps it further). */
export const MAX_SHUTDOWN_HINT_MS = 24 * 3600 * 1000;

export interface RecycleRequestMessage {
  /** Why, for the WAS event line ("watchedFiles: app.js changed"). */
  readonly reason: string;
}

export interface ExitingMessage {
  /** Why the worker is exiting ("the pool's code threw TypeError: …"), for WAS's exit line. */
  readonly reason: string;
}

/**
 * The hosted application's settings that are WAS's to apply (iisnode's
 * nodeProcessCountPerApplication and gracefulShutdownTimeout); 0 = not set.
 */
export interface AppHintsMessage {
  /** Workers the pool should run (a web garden), at least its maxProcesses; 0..MAX_HINTED_PROCESSES. */
  readonly processes: number;
  /** The most time a draining worker gets before it is killed, at most shutdownTimeLimit; 0 = none. */
  readonly shutdownTimeLimitMs: number;
}

/** AppHintsMessage.processes as WAS takes it: a whole number in 0..MAX_HINTED_PROCESSES. */
export function boundedProcesses(n: unknown): number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? Math.min(n, MAX_HINTED_PROCESSES) : 0;
}

/** What WAS receives from one worker. A handler that misses a message does not compile. */
export interface WasControlInbound {
  ready(): void;
  pong(id: number): void;
  recycleRequest(msg: RecycleRequestMessage): void;
  /** `asked`: the process count as sent, for the log line that says it was capped. */
  appHints(msg: AppHintsMessage, asked: number): void;
  /** The worker's last word before it exits. */
  exiting(msg: ExitingMessage): void;
  /** A credential check, bounded field by field (credential-validate.ts); answer it under `id`. */
  credentialCheck(id: number, request: CredentialRequest): void;
  /** A credential check that does not check: answer `id` (the worker waits for it) and log `problem`. */
  credentialRefused(id: number, problem: string): void;
  /** The worker sent something that is not a control message, or a payload that does not check. */
  invalid(problem: string): void;
  closed(error: Error | undefined): void;
}

/** What a worker receives from WAS. */
export interface WorkerControlInbound {
  ping(id: number): void;
  credentialResult(id: number, result: CredentialResult): void;
  credentialsChanged(): void;
  closed(error: Error | undefined): void;
}

/** One decoded worker → WAS message, checked. */
export type WorkerControlMessage =
  | { readonly type: typeof ControlType.Ready }
  | { readonly type: typeof ControlType.Pong; readonly id: number }
  | { readonly type: typeof ControlType.RecycleRequest; readonly msg: RecycleRequestMessage }
  | { readonly type: typeof ControlType.AppHints; readonly msg: AppHintsMessage; readonly asked: number }
  | { readonly type: typeof ControlType.Exiting; readonly msg: ExitingMessage }
  | { readonly type: typeof ControlType.CredentialCheck; readonly id: number; readonly request: CredentialRequest }
  | { readonly type: 'credential-refused'; readonly id: number; readonly problem: string }
  | { readonly type: 'invalid'; readonly problem: string };

function json(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One line in WAS's log: control characters become spaces, the length is bounded. */
function oneLine(text: string, max: number): string {
  return text.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, max);
}

/**
 * Decode and check one frame a worker sent. Nothing the pool's code puts here can throw, grow
 * WAS's memory or reach a log line unbounded: unknown types and malformed payloads come back as
 * `invalid` with what was wrong.
 */
export function parseWorkerControl(type: number, stream: number, payload: Buffer): WorkerControlMessage {
  const t = type as WorkerControlType;
  switch (t) {
    case ControlType.Ready:
      return { type: t };
    case ControlType.Pong:
      return { type: t, id: stream };
    case ControlType.RecycleRequest: {
      const v = json(payload);
      if (!isRecord(v) || typeof v['reason'] !== 'string') return { type: 'invalid', problem: 'a recycle request without a reason' };
      return { type: t, msg: { reason: oneLine(v['reason'], MAX_RECYCLE_REASON) } };
    }
    case ControlType.Exiting: {
      const v = json(payload);
      if (!isRecord(v) || typeof v['reason'] !== 'string') return { type: 'invalid', problem: 'an exit notice without a reason' };
      return { type: t, msg: { reason: oneLine(v['reason'], MAX_EXIT_REASON) } };
    }
    case ControlType.AppHints: {
      const v = json(payload);
      if (!isRecord(v)) return { type: 'invalid', problem: 'application hints that are not an object' };
      const asked = v['processes'];
      const ms = v['shutdownTimeLimitMs'];
      const shutdownTimeLimitMs = typeof ms === 'number' && Number.isSafeInteger(ms) && ms > 0 ? Math.min(ms, MAX_SHUTDOWN_HINT_MS) : 0;
      return {
        type: t,
        msg: { processes: boundedProcesses(asked), shutdownTimeLimitMs },
        asked: typeof asked === 'number' && Number.isSafeInteger(asked) ? asked : 0,
      };
    }
    case ControlType.CredentialCheck: {
      const request = parseCredentialRequest(payload);
      return 'problem' in request ? { type: 'credential-refused', id: stream, problem: request.problem } : { type: t, id: stream, request };
    }
    default: {
      const unknown: never = t;
      return { type: 'invalid', problem: `unknown control message type ${String(unknown)}` };
    }
  }
}

/** Hand one checked message to its handler; exhaustive over WorkerControlMessage. */
export function deliverWorkerControl(m: WorkerControlMessage, h: WasControlInbound): void {
  switch (m.type) {
    case ControlType.Ready:
      h.ready();
      return;
    case ControlType.Pong:
      h.pong(m.id);
      return;
    case ControlType.RecycleRequest:
      h.recycleRequest(m.msg);
      return;
    case ControlType.AppHints:
      h.appHints(m.msg, m.asked);
      return;
    case ControlType.Exiting:
      h.exiting(m.msg);
      return;
    case ControlType.CredentialCheck:
      h.credentialCheck(m.id, m.request);
      return;
    case 'credential-refused':
      h.credentialRefused(m.id, m.problem);
      return;
    case 'invalid':
      h.invalid(m.problem);
      return;
    default: {
      const unhandled: never = m;
      throw new TypeError(`unhandled control message ${JSON.stringify(unhandled)}`);
    }
  }
}
