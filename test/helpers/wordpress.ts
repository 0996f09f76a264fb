/**
 * WordPress as Debian ships it (packages wordpress and wordpress-theme-twentytwentythree), copied
 * into a site folder of its own, and driven over HTTP the way a person in a browser drives it:
 * the installer's form, the log-in form and its cookies, the permalink settings form with its
 * nonce, and the REST API with the cookie nonce. Probe first with `needs(t, wordpress())`.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { send, type Reply } from './node-apps.js';

/** Debian's WordPress: the code, and the wp-content it runs with (WP_CONTENT_DIR in Debian's wp-config.php). */
export const WORDPRESS_DIR = '/usr/share/wordpress';
export const WORDPRESS_CONTENT_DIR = '/var/lib/wordpress/wp-content';

export interface WordPressDatabase {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
}

/**
 * Copies WordPress into `siteDir` with its symlinks resolved (Debian links into /etc/wordpress,
 * /var/lib/wordpress and the shared PHP and JavaScript libraries), leaving out the translations
 * (30 MB nobody reads here) and Debian's per-host wp-config.php, then writes a wp-config.php for
 * `db` and the site's web.config. Every folder is readable by the pool's user; wp-content/uploads
 * is writable by it, as WordPress expects.
 */
export function prepareWordPressSite(siteDir: string, db: WordPressDatabase, webConfig: string | Buffer): void {
  mkdirSync(siteDir, { recursive: true });
  chmodSync(siteDir, 0o755);
  const skip = (root: string, names: readonly string[]) => (src: string): boolean => {
    const rel = relative(root, src).split(sep).join('/');
    return !names.some((n) => rel === n || rel.startsWith(`${n}/`));
  };
  cpSync(WORDPRESS_DIR, siteDir, {
    recursive: true,
    dereference: true,
    // wp-content comes from /var/lib/wordpress below; .htaccess is Apache's (the web.config replaces it).
    filter: skip(WORDPRESS_DIR, ['wp-content', 'wp-config.php', '.htaccess']),
  });
  cpSync(WORDPRESS_CONTENT_DIR, join(siteDir, 'wp-content'), {
    recursive: true,
    dereference: true,
    filter: skip(WORDPRESS_CONTENT_DIR, ['languages']),
  });
  const uploads = join(siteDir, 'wp-content', 'uploads');
  if (!existsSync(uploads)) mkdirSync(uploads);
  chmodSync(uploads, 0o1777);
  const key = (): string => randomBytes(32).toString('base64');
  const php = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const keys = ['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'];
  writeFileSync(
    join(siteDir, 'wp-config.php'),
    [
      '<?php',
      '// Written by the test: the database is the test\'s own MariaDB server, reached over TCP.',
      `define( 'DB_NAME', ${php(db.database)} );`,
      `define( 'DB_USER', ${php(db.user)} );`,
      `define( 'DB_PASSWORD', ${php(db.password)} );`,
      `define( 'DB_HOST', ${php(`${db.host}:${db.port}`)} );`,
      "define( 'DB_CHARSET', 'utf8mb4' );",
      "define( 'DB_COLLATE', '' );",
      ...keys.map((k) => `define( '${k}', ${php(key())} );`),
      "$table_prefix = 'wp_';",
      "define( 'WP_DEBUG', false );",
      // No calls to wordpress.org (update checks, translations): the test needs no network.
      "define( 'WP_HTTP_BLOCK_EXTERNAL', true );",
      "define( 'AUTOMATIC_UPDATER_DISABLED', true );",
      // WP-Cron would fire a request of its own at the site after page loads; nothing here needs it.
      "define( 'DISABLE_WP_CRON', true );",
      "if ( ! defined( 'ABSPATH' ) ) {",
      "\tdefine( 'ABSPATH', __DIR__ . '/' );",
      '}',
      "require_once ABSPATH . 'wp-settings.php';",
      '',
    ].join('\n'),
  );
  writeFileSync(join(siteDir, 'web.config'), webConfig);
}

export interface RequestOptions {
  readonly method?: string;
  /** Sent as application/x-www-form-urlencoded. */
  readonly form?: Record<string, string>;
  /** Sent as application/json. */
  readonly json?: unknown;
  readonly headers?: Record<string, string>;
}

/**
 * One browser: a cookie jar (by name, as WordPress's cookies are unique by name) and requests to
 * one site on 127.0.0.1, each on a fresh connection. Redirects are not followed: tests look at them.
 */
export class BrowserSession {
  readonly #port: number;
  readonly #host: string;
  readonly #cookies = new Map<string, string>();

  constructor(port: number, host = `127.0.0.1:${port}`) {
    this.#port = port;
    this.#host = host;
  }

  /** The site's address as WordPress guesses it from the Host header. */
  get origin(): string {
    return `http://${this.#host}`;
  }

  cookieNames(): string[] {
    return [...this.#cookies.keys()];
  }

  async request(path: string, options: RequestOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { 'user-agent': 'wharf-test (WordPress)', ...(options.headers ?? {}) };
    let body: string | undefined;
    if (options.form !== undefined) {
      body = new URLSearchParams(options.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
    }
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    if (this.#cookies.size > 0) headers['cookie'] = [...this.#cookies].map(([n, v]) => `${n}=${v}`).join('; ');
    const method = options.method ?? (body === undefined ? 'GET' : 'POST');
    const reply = await send(this.#port, this.#host, { method, path, headers, ...(body === undefined ? {} : { body }) });
    this.#store(reply.headers['set-cookie']);
    return reply;
  }

  #store(setCookie: string | string[] | undefined): void {
    for (const line of typeof setCookie === 'string' ? [setCookie] : (setCookie ?? [])) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      // WordPress logs out by sending its cookies again with an expiry a year ago.
      const expired = attributes.some((a) => {
        const [k = '', v = ''] = a.split('=').map((s) => s.trim());
        if (k.toLowerCase() === 'max-age') return Number(v) <= 0;
        if (k.toLowerCase() === 'expires') return Date.parse(v) < Date.now();
        return false;
      });
      if (expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }
}

/** What went wrong, with the start of the page WordPress answered (its error text is in there). */
export function describeReply(what: string, r: Reply): string {
  const text = r
    .text()
    .replace(/<(style|script)\b[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return `${what}: got ${r.status}${r.headers['location'] ? ` → ${String(r.headers['location'])}` : ''}: ${text.slice(0, 600)}`;
}

/** The value of the form field `name` in an HTML page (WordPress's nonces are hidden inputs). */
export function formField(html: string, name: string): string | undefined {
  for (const m of html.matchAll(/<input\b[^>]*>/gi)) {
    const tag = m[0];
    if (!new RegExp(`\\bname=["']${name.replace(/[[\]]/g, '\\$&')}["']`).test(tag)) continue;
    const v = /\bvalue=["']([^"']*)["']/.exec(tag);
    return v?.[1]?.replace(/&amp;/g, '&').replace(/&#0?39;/g, "'").replace(/&quot;/g, '"');
  }
  return undefined;
}

export interface Admin {
  readonly user: string;
  readonly password: string;
  readonly email: string;
}

/** WordPress's own steps, as its pages ask for them. Each throws with what WordPress said when a step fails. */
export class WordPressSite {
  constructor(readonly browser: BrowserSession) {}

  /** The installer's second step: the form with the site title and the first administrator. */
  async install(title: string, admin: Admin): Promise<Reply> {
    const r = await this.browser.request('/wp-admin/install.php?step=2', {
      form: {
        weblog_title: title,
        user_name: admin.user,
        admin_password: admin.password,
        admin_password2: admin.password,
        pw_weak: '1',
        admin_email: admin.email,
        blog_public: '0',
        language: '',
        Submit: 'Install WordPress',
      },
    });
    if (r.status !== 200 || !r.text().includes('WordPress has been installed')) throw new Error(describeReply('install step 2', r));
    return r;
  }

  /** The log-in form, after the page that sets WordPress's test cookie. */
  async logIn(admin: Admin): Promise<Reply> {
    await this.browser.request('/wp-login.php');
    const r = await this.browser.request('/wp-login.php', {
      form: { log: admin.user, pwd: admin.password, 'wp-submit': 'Log In', redirect_to: `${this.browser.origin}/wp-admin/`, testcookie: '1' },
    });
    if (r.status !== 302 || !this.browser.cookieNames().some((n) => n.startsWith('wordpress_logged_in_'))) throw new Error(describeReply('log in', r));
    return r;
  }

  /**
   * Settings › Permalinks: the form, posted back with its nonce and a custom structure, then the
   * page WordPress sends the browser back to (where it rebuilds its rewrite rules). The notice that
   * page shows says how WordPress sees the server (web.config for IIS, .htaccess for Apache).
   */
  async setPermalinkStructure(structure: string): Promise<{ reply: Reply; notice: string }> {
    const page = await this.browser.request('/wp-admin/options-permalink.php');
    const nonce = formField(page.text(), '_wpnonce');
    if (page.status !== 200 || nonce === undefined) throw new Error(describeReply('the permalink settings page', page));
    const r = await this.browser.request('/wp-admin/options-permalink.php', {
      form: {
        _wpnonce: nonce,
        _wp_http_referer: formField(page.text(), '_wp_http_referer') ?? '/wp-admin/options-permalink.php',
        selection: 'custom',
        permalink_structure: structure,
        category_base: '',
        tag_base: '',
        submit: 'Save Changes',
      },
    });
    if (r.status !== 302) throw new Error(describeReply('saving the permalink structure', r));
    const location = new URL(String(r.headers['location']), this.browser.origin);
    const back = await this.browser.request(location.pathname + location.search);
    const notice = /<div id=["']setting-error-settings_updated["'][^>]*>([\s\S]*?)<\/div>/.exec(back.text());
    if (back.status !== 200 || notice === null) throw new Error(describeReply('the permalink settings page after saving', back));
    return { reply: r, notice: notice[1]!.replace(/<[^>]+>/g, '').replace(/\s+/g, ' ').trim() };
  }

  /** The REST API's cookie-authentication nonce, as wp-admin's scripts get it. */
  async restNonce(): Promise<string> {
    const r = await this.browser.request('/wp-admin/admin-ajax.php?action=rest-nonce');
    const nonce = r.text().trim();
    if (r.status !== 200 || !/^[0-9a-f]{10}$/.test(nonce)) throw new Error(describeReply('the REST nonce', r));
    return nonce;
  }

  /** Publishes a post through the REST API (as the block editor does); its id and permalink. */
  async publishPost(title: string, content: string): Promise<{ id: number; link: string; date: string; reply: Reply }> {
    const nonce = await this.restNonce();
    const r = await this.browser.request('/wp-json/wp/v2/posts', {
      json: { title, content, status: 'publish' },
      headers: { 'x-wp-nonce': nonce, accept: 'application/json' },
    });
    if (r.status !== 201) throw new Error(describeReply('publishing a post', r));
    const post = r.json() as { id: number; link: string; date: string };
    return { id: post.id, link: post.link, date: post.date, reply: r };
  }
}
