/**
 * What a worker may ask the main process about a user, and what it gets back: the role LSA plays
 * for IIS. Workers run as their pool's user and never see a password hash, a key or a keytab; the
 * privileged main process checks credentials (PAM for Linux accounts, Wharf's own user store, the
 * machine's Kerberos keytab) and answers with an identity.
 *
 * These travel on the worker's control channel (fd 4, src/ipc/control-messages.ts) as JSON, one
 * CredentialRequest per id and one CredentialResult back. Everything a worker sends is untrusted
 * (the worker runs the pool's code): the main process bounds each field before it acts on it and
 * limits failures per client address.
 */

/** Where a user name is looked up: Linux accounts (PAM, NSS) or Wharf's own users (`wharf user`). */
export type CredentialProvider = 'system' | 'wharf';

/** Digest algorithms of RFC 7616 Wharf accepts. */
export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess';

export type CredentialRequest =
  /** Basic: a user name and password as the client sent them (`domain\user` already split off). */
  | {
      readonly kind: 'password';
      /** Tried in order; the first that knows the user decides. */
      readonly providers: readonly CredentialProvider[];
      readonly user: string;
      readonly password: string;
      /** basicAuthentication's defaultLogonDomain or the client's `DOMAIN\`; '' = none. */
      readonly domain: string;
      /** The client's address, for the failure limit and the log. */
      readonly clientAddress: string;
    }
  /**
   * Digest (RFC 7616): the fields of the client's Authorization header. The worker issued and
   * checked the nonce; the main process recomputes `response` from the secret it keeps.
   */
  | {
      readonly kind: 'digest';
      readonly user: string;
      readonly realm: string;
      readonly algorithm: DigestAlgorithm;
      readonly method: string;
      readonly uri: string;
      readonly nonce: string;
      readonly nc: string;
      readonly cnonce: string;
      readonly qop: string;
      readonly response: string;
      readonly clientAddress: string;
    }
  /**
   * Negotiate (SPNEGO/Kerberos): one token from the client's `Authorization: Negotiate …`
   * (base64). `context` continues a multi-leg exchange (the id a previous result returned).
   */
  | { readonly kind: 'negotiate'; readonly token: string; readonly context: string; readonly clientAddress: string }
  /**
   * An account named by configuration, without a password: anonymousAuthentication's userName, a
   * client certificate mapping's user. Answers with its identity or unknown-user.
   */
  | { readonly kind: 'account'; readonly providers: readonly CredentialProvider[]; readonly user: string };

/** Who a request runs as, once authenticated. */
export interface Identity {
  /** The name as IIS shows it in AUTH_USER / cs-username ('alice', 'EXAMPLE\alice' for Kerberos). */
  readonly name: string;
  readonly provider: CredentialProvider;
  /** Linux uid and primary gid whose file rights apply; -1 for Wharf users (no Linux account). */
  readonly uid: number;
  readonly gid: number;
  /** Every group the account is in (primary first): the roles of URL authorization. */
  readonly groups: readonly { readonly name: string; readonly gid: number }[];
}

export type CredentialFailure =
  /** Wrong password, bad digest response, rejected ticket: 401.1. */
  | 'bad-credentials'
  /** No such user in any provider asked: 401.1 too (the client must not learn which). */
  | 'unknown-user'
  /** This client address failed too often; answered without checking: 401.1. */
  | 'throttled'
  /** The provider could not be asked (PAM missing, no keytab): 500, and an error logged. */
  | 'unavailable';

export type CredentialResult =
  | {
      readonly ok: true;
      readonly identity: Identity;
      /** Negotiate: the server's last token to send back (`WWW-Authenticate: Negotiate …`). */
      readonly token?: string;
    }
  | {
      readonly ok: false;
      readonly reason: CredentialFailure;
      /** For the server log only, never for the client. */
      readonly message: string;
      /** Negotiate needs another leg: send `token` and wait for the client's next one under `context`. */
      readonly continueNegotiate?: { readonly token: string; readonly context: string };
    };

/** What the worker's modules call; WorkerServices.credentials implements it over the control channel. */
export interface CredentialClient {
  check(request: CredentialRequest): Promise<CredentialResult>;
  /**
   * The answer check() would give at once without asking the main process (a logon verified in
   * the last 15 minutes, an address still throttled), else undefined. Lets a keep-alive client's
   * Basic requests stay synchronous: no promise per request once the logon is cached.
   */
  cached(request: CredentialRequest): CredentialResult | undefined;
}

/**
 * How long a verified logon is reused without asking again: IIS's UserTokenTTL default (15
 * minutes). The main process and each worker keep their own cache for this long.
 */
export const LOGON_CACHE_TTL_MS = 15 * 60_000;

/**
 * How long a client address that failed too often is answered 'throttled'. A worker remembers it
 * too, so its own logon cache cannot be used to go on guessing at full speed.
 */
export const LOGON_THROTTLE_MS = 5 * 60_000;
