/**
 * Test helper: evaluates the small subset of Terraform's template language that the
 * constructs emit (string templates with `${…}` interpolations, quoted string literals,
 * references, and the functions base64gzip, base64encode, base64decode), so that tests
 * can decode user data exactly as Terraform will compute it at apply time.
 */
import * as zlib from 'node:zlib';

export type Resolver = (reference: string) => string;

type Value = string | Buffer;

class Parser {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly resolve: Resolver,
  ) {}

  /** A top-level template (a JSON string attribute): literals escape only `$${` and `%%{`. */
  template(): Value {
    const parts: Value[] = [];
    let lit = '';
    while (this.i < this.s.length) {
      if (this.s.startsWith('$${', this.i) || this.s.startsWith('%%{', this.i)) {
        lit += this.s[this.i] + '{';
        this.i += 3;
      } else if (this.s.startsWith('${', this.i)) {
        parts.push(lit);
        lit = '';
        this.i += 2;
        parts.push(this.interpolation());
      } else if (this.s.startsWith('%{', this.i)) {
        throw new Error(`template directive at ${this.i} is not supported (an unescaped %{ in user data?)`);
      } else {
        lit += this.s[this.i++];
      }
    }
    parts.push(lit);
    return join(parts);
  }

  private interpolation(): Value {
    this.ws();
    const v = this.expression();
    this.ws();
    this.expect('}');
    return v;
  }

  private expression(): Value {
    this.ws();
    if (this.s[this.i] === '"') return this.quoted();
    const m = /^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*/.exec(this.s.slice(this.i));
    if (!m) throw new Error(`unexpected '${this.s.slice(this.i, this.i + 20)}' at ${this.i}`);
    this.i += m[0].length;
    this.ws();
    if (this.s[this.i] === '(') {
      this.i++;
      const args: Value[] = [];
      this.ws();
      while (this.s[this.i] !== ')') {
        args.push(this.expression());
        this.ws();
        if (this.s[this.i] === ',') this.i++;
        this.ws();
      }
      this.i++;
      return call(m[0], args);
    }
    return this.resolve(m[0]);
  }

  /** A quoted template: JSON-like escapes, `$${`, `%%{`, and nested interpolations. */
  private quoted(): Value {
    this.expect('"');
    const parts: Value[] = [];
    let lit = '';
    for (;;) {
      const c = this.s[this.i];
      if (c === undefined) throw new Error('unterminated string');
      if (c === '"') {
        this.i++;
        break;
      }
      if (c === '\\') {
        const n = this.s[this.i + 1];
        const map: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' };
        if (n === 'u') {
          lit += String.fromCharCode(parseInt(this.s.slice(this.i + 2, this.i + 6), 16));
          this.i += 6;
        } else if (n in map) {
          lit += map[n];
          this.i += 2;
        } else {
          throw new Error(`invalid escape \\${n} at ${this.i}`);
        }
      } else if (this.s.startsWith('$${', this.i) || this.s.startsWith('%%{', this.i)) {
        lit += c + '{';
        this.i += 3;
      } else if (this.s.startsWith('${', this.i)) {
        parts.push(lit);
        lit = '';
        this.i += 2;
        parts.push(this.interpolation());
      } else if (this.s.startsWith('%{', this.i)) {
        throw new Error(`template directive at ${this.i} is not supported`);
      } else {
        lit += c;
        this.i++;
      }
    }
    parts.push(lit);
    return join(parts);
  }

  private ws(): void {
    while (/\s/.test(this.s[this.i] ?? '')) this.i++;
  }

  private expect(c: string): void {
    if (this.s[this.i] !== c) throw new Error(`expected '${c}' at ${this.i}, got '${this.s.slice(this.i, this.i + 20)}'`);
    this.i++;
  }
}

function join(parts: Value[]): Value {
  const nonEmpty = parts.filter((p) => p.length > 0);
  if (nonEmpty.length === 1 && Buffer.isBuffer(nonEmpty[0])) return nonEmpty[0];
  return parts.map((p) => (Buffer.isBuffer(p) ? p.toString('utf8') : p)).join('');
}

function text(v: Value): string {
  return Buffer.isBuffer(v) ? v.toString('utf8') : v;
}

function call(name: string, args: Value[]): Value {
  switch (name) {
    case 'base64gzip':
      return zlib.gzipSync(Buffer.from(text(args[0]), 'utf8')).toString('base64');
    case 'base64encode':
      return Buffer.from(text(args[0]), 'utf8').toString('base64');
    case 'base64decode':
      return Buffer.from(text(args[0]), 'base64').toString('utf8');
    default:
      throw new Error(`function ${name}() is not supported by the test evaluator`);
  }
}

/** Evaluates a string attribute of Terraform JSON. */
export function evaluate(attribute: string, resolve: Resolver): string {
  return text(new Parser(attribute, resolve).template());
}
