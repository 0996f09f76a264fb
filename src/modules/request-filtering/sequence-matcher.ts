/**
 * "Does this text contain any of these strings?" in one pass over the text, however many strings
 * (an Aho–Corasick automaton, built once per configuration element). Request filtering scans
 * URLs, query strings and headers of every request against administrator-written lists
 * (denyUrlSequences, denyQueryStringSequences, filteringRules denyStrings): with one `includes` per
 * string the work would grow with the list times the input; here it is linear in the input.
 *
 * Matching is case-insensitive: the strings are lower-cased here, and callers pass lower-cased text
 * (String.prototype.toLowerCase, the same folding on both sides).
 */
export class SequenceMatcher {
  /** Per state: UTF-16 code unit → next state (the trie's edges). */
  readonly #edges: Map<number, number>[] = [new Map()];
  /** Per state: the longest proper suffix of its prefix that is also a trie state. */
  readonly #fail: number[] = [0];
  /** Per state: some string ends here, or at a state on its failure chain. */
  readonly #accept: boolean[] = [false];
  readonly size: number;

  constructor(strings: readonly string[]) {
    const list = strings.filter((s) => s !== '').map((s) => s.toLowerCase());
    this.size = list.length;
    for (const s of list) {
      let state = 0;
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        let next = this.#edges[state]!.get(c);
        if (next === undefined) {
          next = this.#edges.length;
          this.#edges.push(new Map());
          this.#fail.push(0);
          this.#accept.push(false);
          this.#edges[state]!.set(c, next);
        }
        state = next;
      }
      this.#accept[state] = true;
    }
    // Failure links breadth-first: a state's link is settled before its children's.
    const queue: number[] = [...this.#edges[0]!.values()];
    for (let head = 0; head < queue.length; head++) {
      const state = queue[head]!;
      for (const [c, child] of this.#edges[state]!) {
        let f = this.#fail[state]!;
        while (f !== 0 && !this.#edges[f]!.has(c)) f = this.#fail[f]!;
        const target = this.#edges[f]!.get(c);
        this.#fail[child] = target !== undefined && target !== child ? target : 0;
        if (this.#accept[this.#fail[child]!]) this.#accept[child] = true;
        queue.push(child);
      }
    }
  }

  /** Whether `lowerText` contains one of the strings. O(text length): each step moves forward once, falls back at most as often. */
  test(lowerText: string): boolean {
    if (this.size === 0) return false;
    let state = 0;
    for (let i = 0; i < lowerText.length; i++) {
      const c = lowerText.charCodeAt(i);
      let next = this.#edges[state]!.get(c);
      while (next === undefined && state !== 0) {
        state = this.#fail[state]!;
        next = this.#edges[state]!.get(c);
      }
      state = next ?? 0;
      if (this.#accept[state]) return true;
    }
    return false;
  }
}
