/**
 * The program a CGI handler runs and its arguments. A handler's `scriptProcessor` is written the
 * IIS way, a Windows command line: the program's path (quoted when it has spaces) then arguments,
 * where the first `%s` stands for the script's physical path and the second for the query
 * string's search words (RFC 3875 §4.4), e.g. `C:\Perl\bin\perl.exe "%s" %s`. Without a
 * scriptProcessor the mapped file runs itself, with the search words as its arguments.
 *
 * Wharf builds an argv (no shell ever sees it): quotes group words and are removed, a `%s` word
 * becomes one argument whatever it holds, so a path or query word with spaces or `;` stays one
 * argument.
 */
import { mapExpandedPath } from '../../config/path-map.js';

/** A scriptProcessor split into the program as written and its argument words (with `%s`). */
export interface CommandTemplate {
  readonly program: string;
  readonly args: readonly string[];
}

/** Most search words passed as arguments: a query string cannot make an unbounded argv. */
export const MAX_SEARCH_WORDS = 256;

/**
 * Split a Windows-style command line into words: whitespace separates, double quotes group (and
 * are dropped), `\"` is a literal quote; other backslashes are kept (`C:\php\php-cgi.exe`).
 * Throws on an unbalanced quote or an empty line.
 */
export function splitCommandLine(text: string): string[] {
  const words = splitWords(text);
  if (words.length === 0 || words[0] === '') throw new Error('the command line names no program');
  return words;
}

/** splitCommandLine's words, none for an empty text (arguments without a program). */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && text[i + 1] === '"') {
      word += '"';
      inWord = true;
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      inWord = true;
    } else if (!quoted && (c === ' ' || c === '\t')) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quoted) throw new Error(`the command line ${JSON.stringify(text)} has an unclosed quote`);
  if (inWord) words.push(word);
  return words;
}

export function parseScriptProcessor(text: string): CommandTemplate {
  const [program, ...args] = splitCommandLine(text.trim());
  return { program: program!, args };
}

/**
 * The query string's search words (RFC 3875 §4.4): only a query without '=' has them; it is
 * split at '+' and each word percent-decoded. A query the rule cannot read whole (an empty word,
 * a bad escape, too many words) gives none at all, as §4.4 asks ("MUST NOT generate any command
 * line information").
 */
export function searchWords(query: string): string[] {
  if (query === '' || query.includes('=')) return [];
  const raw = query.split('+');
  if (raw.length > MAX_SEARCH_WORDS) return [];
  const out: string[] = [];
  for (const w of raw) {
    if (w === '') return [];
    let decoded: string;
    try {
      decoded = decodeURIComponent(w);
    } catch {
      return [];
    }
    // A NUL cannot be passed in an argument; a word holding one makes the list unreadable.
    if (decoded.includes('\0')) return [];
    out.push(decoded);
  }
  return out;
}

/**
 * The arguments for one request: the first `%s` is the script's path, the second the search
 * words (a word that is exactly `%s` becomes one argument per search word, else they are joined
 * with spaces inside it). Without a scriptProcessor (`template` undefined) the program is the
 * script itself and gets the search words, as a CGI script run directly does.
 */
export function commandArguments(template: CommandTemplate | undefined, script: string, query: string): string[] {
  if (template === undefined) return searchWords(query);
  let seen = 0;
  let words: string[] | undefined;
  const out: string[] = [];
  for (const arg of template.args) {
    if (!arg.includes('%s')) {
      out.push(arg);
      continue;
    }
    if (arg === '%s' && seen === 1) {
      seen++;
      out.push(...(words ??= searchWords(query)));
      continue;
    }
    const parts = arg.split('%s');
    let text = parts[0]!;
    for (let i = 1; i < parts.length; i++) {
      seen++;
      text += (seen === 1 ? script : seen === 2 ? (words ??= searchWords(query)).join(' ') : '%s') + parts[i];
    }
    out.push(text);
  }
  return out;
}

export interface ProgramPathOptions {
  /** Where `C:` points (the worker's system drive). */
  readonly systemDrive: string;
  /** Folder a relative program path resolves against: that of the file that configured it. */
  readonly baseDir: string;
}

/**
 * The program's Linux path, by the path rule of docs/configuration.md (`C:\php\php-cgi.exe` →
 * `<system drive>/php/php-cgi.exe`); throws ConfigError for a UNC path.
 */
export function programPath(program: string, options: ProgramPathOptions): string {
  return mapExpandedPath(program, options);
}

/**
 * How isapiCgiRestriction entries and programs are compared: the program's Linux path and the
 * argument words, as written (with `%s`), so `"C:\Perl\bin\perl.exe" "%s" %s` and
 * `C:\Perl\bin\perl.exe "%s" %s` are the same entry. Case matters: IIS compares ignoring case
 * because Windows file names do; Linux file names do not, and `/usr/bin/PHP-cgi` is another file.
 */
export function restrictionKey(program: string, args: readonly string[]): string {
  return args.length === 0 ? program : program + '\0' + args.join('\0');
}
