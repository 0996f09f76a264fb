/**
 * An application pool's identity across WAS, the listener's pool queues and the server: its name
 * folded once. IIS compares pool names case-insensitively (`DefaultAppPool` and `defaultapppool`
 * are one pool, and an application's applicationPool attribute may spell it either way), so
 * every map of pools is keyed by a PoolKey and nothing else lower-cases a pool name.
 */
export type PoolKey = string & { readonly __brand: 'PoolKey' };

/** The key of the pool named `name` (any spelling). */
export function poolKey(name: string): PoolKey {
  return name.toLowerCase() as PoolKey;
}

/**
 * The folder an application pool's files get under a shared directory (IIS: `IIS Temporary
 * Compressed Files\<AppPoolName>`): the pool name folded like its key, percent-encoded where a
 * character could not be a file name or could climb out of the directory.
 */
export function poolFolderName(name: string): string {
  const folded = encodeURIComponent(poolKey(name));
  return folded === '.' || folded === '..' ? folded.replaceAll('.', '%2E') : folded;
}
