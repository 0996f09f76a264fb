/**
 * The pool and worker state machines of the activation service, and what WAS says about them.
 *
 *   pool:    Started ⇄ Stopping → Stopped → Started
 *   worker:  Starting → Running → Recycling → Draining → Exited
 *                  ╰──────────╰──────────╰─────────────↗  (crash, kill)
 *            Running / Recycling → Orphaned → Exited       (orphanWorkerProcess)
 *
 * Every worker state change goes through `transition`, checked against WORKER_TRANSITIONS.
 */
import { WasError } from '../errors.js';
import type { RecycleReason } from './pool-settings.js';

export type PoolState = 'Started' | 'Stopping' | 'Stopped';
export type WorkerState = 'Starting' | 'Running' | 'Recycling' | 'Draining' | 'Orphaned' | 'Exited';

/** Allowed worker transitions: anything else is a bug, caught at once. */
export const WORKER_TRANSITIONS: Readonly<Record<WorkerState, readonly WorkerState[]>> = {
  Starting: ['Running', 'Draining', 'Exited'],
  Running: ['Recycling', 'Draining', 'Orphaned', 'Exited'],
  Recycling: ['Draining', 'Orphaned', 'Exited'],
  Draining: ['Exited'],
  // failure orphanWorkerProcess: a hung worker left running for a debugger, no longer the pool's.
  Orphaned: ['Exited'],
  Exited: [],
};

export function transition(w: { readonly pid: number; state: WorkerState }, to: WorkerState): void {
  if (!WORKER_TRANSITIONS[w.state].includes(to)) {
    throw new WasError('WAS_WORKER_START', `worker ${w.pid}: invalid state change ${w.state} → ${to}`);
  }
  w.state = to;
}

/** Why WAS let a worker go, as wharf:worker:exit words it ('' while nobody asked: then a crash). */
export type ExitCause = '' | 'startup' | 'ping' | 'idle' | 'recycle' | 'stop' | 'shutdownTimeLimit' | 'cpuLimit' | 'orphaned';

/** WAS event ids and texts for recycles (IIS writes these to the System event log). */
export const RECYCLE_EVENTS: Readonly<Record<RecycleReason, readonly [number, string]>> = {
  Time: [5074, 'reached its allowed processing time limit'],
  Requests: [5075, 'reached its allowed processing request limit'],
  Schedule: [5076, 'reached its scheduled recycle time'],
  Memory: [5077, 'reached its allowed virtual memory limit'],
  IsapiUnhealthy: [5078, 'asked to be recycled'],
  OnDemand: [5079, 'was asked to recycle by an administrator'],
  ConfigChange: [5080, 'had its application pool configuration changed'],
  PrivateMemory: [5117, 'reached its allowed private bytes limit'],
};

/** RecycleReason as wharf:pool:recycle words it ('Time' → 'time', 'PrivateMemory' → 'privateMemory'). */
export function recycleWord(reason: RecycleReason): string {
  return reason[0]!.toLowerCase() + reason.slice(1);
}

/**
 * The next periodicRestart schedule time after `now`, in ms from now. `times` are ms after
 * local midnight, sorted; past today's last one, tomorrow's first.
 */
export function untilNextSchedule(times: readonly number[], now: number): number | undefined {
  if (times.length === 0) return undefined;
  const d = new Date(now);
  const midnight = new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const sinceMidnight = now - midnight;
  const next = times.find((t) => t > sinceMidnight) ?? times[0]! + 24 * 3600 * 1000;
  return next - sinceMidnight;
}
