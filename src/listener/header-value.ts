/** Header lookups on the listener's flat [name, value, …] lists (names as received). */

/** The first value of a header (name given in lower case), '' when absent. */
export function headerValue(raw: readonly string[], lowerName: string): string {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    // Lengths first: most names differ in length, and lower-casing allocates.
    if (n.length === lowerName.length && n.toLowerCase() === lowerName) return raw[i + 1]!;
  }
  return '';
}
