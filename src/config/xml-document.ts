/**
 * Configuration files as a tree of positioned elements. saxes does the XML work (well-formedness,
 * entities, the `<?xml?>` declaration); this file only records where each element and attribute
 * starts, because every configuration error Wharf reports names a file, a line and a column, as
 * IIS's 500.19 page does.
 */
import { SaxesParser } from 'saxes';
import { ConfigError, HRESULT } from '../errors.js';
import type { SourcePosition } from '../errors.js';

export interface XmlAttribute {
  readonly name: string;
  readonly value: string;
  /** 1-based position of the attribute name. */
  readonly line: number;
  readonly column: number;
}

export interface XmlElement {
  readonly name: string;
  /** In document order. Names are case-sensitive, as in IIS. */
  readonly attributes: readonly XmlAttribute[];
  readonly children: readonly XmlElement[];
  /** 1-based position of the `<` that opens the element. */
  readonly line: number;
  readonly column: number;
  /** Character data directly inside the element (used only by preserved, unsupported sections). */
  readonly text: string;
}

export interface XmlDocument {
  readonly file: string;
  readonly root: XmlElement;
}

interface MutableElement {
  name: string;
  attributes: XmlAttribute[];
  children: MutableElement[];
  line: number;
  column: number;
  text: string;
}

/**
 * Decodes the bytes of a configuration file. IIS accepts UTF-8 with or without a BOM (the h5bp
 * web.config starts with one) and UTF-16 files written by Notepad; the BOM decides.
 */
export function decodeConfigBytes(bytes: Uint8Array): string {
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) {
    return new TextDecoder('utf-16le').decode(bytes.subarray(2));
  }
  if (bytes.length >= 2 && bytes[0] === 0xfe && bytes[1] === 0xff) {
    return new TextDecoder('utf-16be').decode(bytes.subarray(2));
  }
  return new TextDecoder('utf-8').decode(bytes);
}

/** Offsets of line starts, so any string index maps to a 1-based line and column. */
class LineIndex {
  readonly #starts: number[] = [0];
  constructor(text: string) {
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.#starts.push(i + 1);
  }
  at(offset: number): { line: number; column: number } {
    const starts = this.#starts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo]! + 1 };
  }
}

// One attribute inside the raw text of a start tag. saxes has already checked the tag is
// well-formed, so a simple scan is exact here.
const ATTRIBUTE_IN_TAG = /([^\s=<>/"']+)\s*=\s*(?:"[^"]*"|'[^']*')/g;

/** Parses configuration XML. Malformed XML → ConfigError CFG_XML (IIS: 0x8007000d). */
export function parseXml(file: string, source: string): XmlDocument {
  // A UTF-8 BOM read as text is U+FEFF; IIS ignores it and so do we.
  const text = source.charCodeAt(0) === 0xfeff ? source.slice(1) : source;
  const lines = new LineIndex(text);
  const parser = new SaxesParser<{ xmlns: false; fileName: string; position: true }>({ xmlns: false, fileName: file, position: true });
  const stack: MutableElement[] = [];
  let root: MutableElement | undefined;
  let tagStart = 0;

  const fail = (message: string): never => {
    throw new ConfigError(
      'CFG_XML',
      `Configuration file is not well-formed XML: ${message}`,
      { file, line: parser.line, column: parser.column + 1 },
      HRESULT.invalidData,
    );
  };

  parser.on('error', (err: Error) => {
    // saxes prefixes its messages with "file:line:column: "; the position is reported separately.
    const message = err.message.startsWith(file + ':') ? err.message.replace(/^.*?:\d+:\d+: /, '') : err.message;
    fail(message);
  });
  parser.on('opentagstart', (tag) => {
    // Called just after the name (and the character ending it) was read; the '<' is the nearest
    // '<name' before that point.
    tagStart = text.lastIndexOf('<' + tag.name, parser.position);
  });
  parser.on('opentag', (tag) => {
    const start = lines.at(tagStart);
    const raw = text.slice(tagStart + 1 + tag.name.length, parser.position);
    const attributes: XmlAttribute[] = [];
    ATTRIBUTE_IN_TAG.lastIndex = 0;
    for (let m = ATTRIBUTE_IN_TAG.exec(raw); m !== null; m = ATTRIBUTE_IN_TAG.exec(raw)) {
      const name = m[1]!;
      const value = tag.attributes[name];
      if (value === undefined) continue;
      const at = lines.at(tagStart + 1 + tag.name.length + m.index);
      attributes.push({ name, value, line: at.line, column: at.column });
    }
    const element: MutableElement = {
      name: tag.name,
      attributes,
      children: [],
      line: start.line,
      column: start.column,
      text: '',
    };
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(element);
    else root = element;
    stack.push(element);
  });
  // saxes reports a close for self-closing tags too, so every open is matched by one close.
  parser.on('closetag', () => {
    stack.pop();
  });
  parser.on('text', (data: string) => {
    const top = stack[stack.length - 1];
    if (top) top.text += data;
  });
  parser.on('cdata', (data: string) => {
    const top = stack[stack.length - 1];
    if (top) top.text += data;
  });

  parser.write(text).close();
  if (!root) return fail('the document has no root element');
  return { file, root };
}

/** The attribute named `name` (case-sensitive), if present. */
export function attributeOf(element: XmlElement, name: string): XmlAttribute | undefined {
  for (const a of element.attributes) if (a.name === name) return a;
  return undefined;
}

export function elementPosition(file: string, element: XmlElement): SourcePosition {
  return { file, line: element.line, column: element.column };
}

export function attributePosition(file: string, attribute: XmlAttribute): SourcePosition {
  return { file, line: attribute.line, column: attribute.column };
}
