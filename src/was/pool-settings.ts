/**
 * An application pool's settings as the activation service uses them, read once per
 * configuration generation from the merged `<add>` + `<applicationPoolDefaults>` element.
 * Times are milliseconds; 0 disables a limit, as in IIS.
 */
import type { AppHostConfig, AppPoolConfig, ConfigElement } from '../config/types.js';
import { poolKey, type PoolKey } from '../config/pool-key.js';

export type RecycleReason = 'Time' | 'Requests' | 'Schedule' | 'Memory' | 'IsapiUnhealthy' | 'OnDemand' | 'ConfigChange' | 'PrivateMemory';

export interface PoolSettings {
  readonly name: string;
  /** The name folded once: every map of pools is keyed by it (pool-key.ts). */
  readonly key: PoolKey;
  readonly autoStart: boolean;
  readonly startMode: 'OnDemand' | 'AlwaysRunning';
  readonly managedRuntimeVersion: string;
  /**
   * The node executable the pool's workers run on: managedRuntimeVersion when it is an absolute
   * path (Wharf's analog of choosing a CLR version), else the node running Wharf. IIS's own
   * values (v4.0, v2.0, '') name .NET runtimes and select the default.
   */
  readonly runtime: string;
  readonly managedPipelineMode: string;
  readonly queueLength: number;
  readonly identityType: string;
  readonly userName: string;
  readonly maxProcesses: number;
  readonly startupTimeLimitMs: number;
  readonly shutdownTimeLimitMs: number;
  readonly pingingEnabled: boolean;
  readonly pingIntervalMs: number;
  readonly pingResponseTimeMs: number;
  readonly idleTimeoutMs: number;
  readonly idleTimeoutAction: string;
  readonly logIdleTimeout: boolean;
  readonly recycling: {
    readonly disallowOverlappingRotation: boolean;
    readonly disallowRotationOnConfigChange: boolean;
    readonly logEventOn: ReadonlySet<string>;
    readonly timeMs: number;
    readonly requests: number;
    /** Virtual memory limit in KB (IIS "memory"). */
    readonly memoryKb: number;
    /** Private memory limit in KB (IIS "privateMemory"). */
    readonly privateMemoryKb: number;
    /** Times of day (ms after local midnight), sorted. */
    readonly schedule: readonly number[];
  };
  readonly failure: {
    readonly rapidFailProtection: boolean;
    readonly intervalMs: number;
    readonly maxCrashes: number;
    readonly loadBalancerCapabilities: 'HttpLevel' | 'TcpLevel';
    readonly autoShutdownExe: string;
    readonly autoShutdownParams: string;
    readonly orphanWorkerProcess: boolean;
    readonly orphanActionExe: string;
    readonly orphanActionParams: string;
  };
  readonly cpu: {
    /** In 1/1000 of a percent of one CPU per resetInterval (100000 = 100 %). */
    readonly limit: number;
    readonly action: string;
    readonly resetIntervalMs: number;
  };
  readonly environment: Readonly<Record<string, string>>;
  /**
   * Every attribute of the pool's element, serialised: a change to it is a configuration change
   * to the pool (recycle unless disallowRotationOnConfigChange).
   */
  readonly signature: string;
  /** Applications served by the pool with preloadEnabled (site id, application path). */
  readonly preload: ReadonlyArray<{ readonly siteId: number; readonly path: string }>;
}

export function poolSettings(config: AppHostConfig): PoolSettings[] {
  return config.applicationPools.map((p) => onePool(config, p));
}

function onePool(config: AppHostConfig, p: AppPoolConfig): PoolSettings {
  const e = p.element;
  const pm = e.child('processModel');
  const rc = e.child('recycling');
  const pr = rc.child('periodicRestart');
  const fl = e.child('failure');
  const cpu = e.child('cpu');
  const env: Record<string, string> = {};
  for (const item of e.child('environmentVariables').items) env[item.str('name')] = item.str('value');
  const preload: Array<{ siteId: number; path: string }> = [];
  for (const site of config.sites) {
    for (const app of site.applications) {
      if (app.preloadEnabled && poolKey(app.applicationPool) === poolKey(p.name)) preload.push({ siteId: site.id, path: app.path });
    }
  }
  return {
    name: p.name,
    key: poolKey(p.name),
    autoStart: p.autoStart,
    startMode: p.startMode === 'AlwaysRunning' ? 'AlwaysRunning' : 'OnDemand',
    managedRuntimeVersion: e.str('managedRuntimeVersion'),
    runtime: runtimeOf(e.str('managedRuntimeVersion')),
    managedPipelineMode: e.enumName('managedPipelineMode'),
    queueLength: p.queueLength,
    identityType: pm.enumName('identityType'),
    userName: pm.str('userName'),
    // maxProcesses 0 means "one per NUMA node" in IIS; Linux boxes here have one node.
    maxProcesses: Math.max(1, pm.num('maxProcesses')),
    startupTimeLimitMs: pm.num('startupTimeLimit'),
    shutdownTimeLimitMs: pm.num('shutdownTimeLimit'),
    pingingEnabled: pm.bool('pingingEnabled'),
    pingIntervalMs: pm.num('pingInterval'),
    pingResponseTimeMs: pm.num('pingResponseTime'),
    idleTimeoutMs: pm.num('idleTimeout'),
    idleTimeoutAction: pm.enumName('idleTimeoutAction'),
    logIdleTimeout: pm.flagNames('logEventOnProcessModel').has('IdleTimeout'),
    recycling: {
      disallowOverlappingRotation: rc.bool('disallowOverlappingRotation'),
      disallowRotationOnConfigChange: rc.bool('disallowRotationOnConfigChange'),
      logEventOn: rc.flagNames('logEventOnRecycle'),
      timeMs: pr.num('time'),
      requests: pr.num('requests'),
      memoryKb: pr.num('memory'),
      privateMemoryKb: pr.num('privateMemory'),
      schedule: pr
        .child('schedule')
        .items.map((i) => i.num('value'))
        .sort((a, b) => a - b),
    },
    failure: {
      rapidFailProtection: fl.bool('rapidFailProtection'),
      intervalMs: fl.num('rapidFailProtectionInterval'),
      maxCrashes: fl.num('rapidFailProtectionMaxCrashes'),
      loadBalancerCapabilities: fl.enumName('loadBalancerCapabilities') === 'TcpLevel' ? 'TcpLevel' : 'HttpLevel',
      autoShutdownExe: fl.str('autoShutdownExe'),
      autoShutdownParams: fl.str('autoShutdownParams'),
      orphanWorkerProcess: fl.bool('orphanWorkerProcess'),
      orphanActionExe: fl.str('orphanActionExe'),
      orphanActionParams: fl.str('orphanActionParams'),
    },
    cpu: {
      limit: cpu.num('limit'),
      action: cpu.enumName('action'),
      resetIntervalMs: cpu.num('resetInterval'),
    },
    environment: env,
    signature: signatureOf(e),
    preload,
  };
}

/**
 * What the pool's workers are started with, serialised: equal iff nothing a worker depends on
 * changed. (queueLength and autoStart are the listener's and WAS's business: no recycle.)
 */
function signatureOf(e: ConfigElement): string {
  const pm = e.child('processModel');
  const rc = e.child('recycling');
  const pr = rc.child('periodicRestart');
  const parts: unknown[] = [
    pick(e, ['startMode', 'managedRuntimeVersion', 'managedPipelineMode', 'enable32BitAppOnWin64']),
    pick(pm, ['identityType', 'userName', 'idleTimeout', 'idleTimeoutAction', 'maxProcesses', 'shutdownTimeLimit', 'startupTimeLimit', 'pingingEnabled', 'pingInterval', 'pingResponseTime', 'loadUserProfile']),
    pick(rc, ['disallowOverlappingRotation', 'logEventOnRecycle']),
    pick(pr, ['memory', 'privateMemory', 'requests', 'time']),
    pr.child('schedule').items.map((i) => i.num('value')),
    pick(e.child('failure'), ['loadBalancerCapabilities', 'rapidFailProtection', 'rapidFailProtectionInterval', 'rapidFailProtectionMaxCrashes', 'orphanWorkerProcess']),
    pick(e.child('cpu'), ['limit', 'action', 'resetInterval']),
    e.child('environmentVariables').items.map((i) => [i.str('name'), i.str('value')]),
  ];
  return JSON.stringify(parts);
}

function pick(el: ConfigElement, names: readonly string[]): unknown[] {
  return names.map((n) => el.get(n));
}

/** The node binary a pool's managedRuntimeVersion names (an absolute path), else this process's. */
export function runtimeOf(managedRuntimeVersion: string): string {
  const v = managedRuntimeVersion.trim();
  return v.startsWith('/') ? v : process.execPath;
}
