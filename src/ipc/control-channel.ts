/**
 * Both ends of the WAS ↔ worker control channel (fd 4; the catalogue is control-messages.ts),
 * on the request channel's framing.
 */
import type { Duplex } from 'node:stream';
import { Channel } from './channel.js';
import {
  ControlType,
  deliverWorkerControl,
  parseWorkerControl,
  type AppHintsMessage,
  type ExitingMessage,
  type RecycleRequestMessage,
  type WasControlInbound,
  type WasControlType,
  type WorkerControlInbound,
} from './control-messages.js';
import type { CredentialRequest, CredentialResult } from './credential-messages.js';
import { decodeCredentialResult } from './credential-validate.js';

/**
 * WAS's end. A spare worker's channel exists before any pool owns the worker: its handler is
 * bound when a pool takes it, and what arrives before that is dropped (a spare sends nothing
 * before its Init).
 */
export class WasControlChannel extends Channel {
  #h: WasControlInbound | undefined;
  constructor(socket: Duplex, handlers?: WasControlInbound) {
    super(socket);
    this.#h = handlers;
  }

  bind(handlers: WasControlInbound): void {
    this.#h = handlers;
  }

  sendPing(id: number): void {
    this.frame(ControlType.Ping, id >>> 0);
  }
  sendCredentialResult(id: number, result: CredentialResult): void {
    this.jsonFrame(ControlType.CredentialResult, result, id >>> 0);
  }
  sendCredentialsChanged(): void {
    this.frame(ControlType.CredentialsChanged, 0);
  }

  protected dispatch(type: number, stream: number, payload: Buffer): void {
    const h = this.#h;
    if (h !== undefined) deliverWorkerControl(parseWorkerControl(type, stream, payload), h);
  }

  protected onClosed(error: Error | undefined): void {
    this.#h?.closed(error);
  }
}

/** The worker's end. */
export class WorkerControlChannel extends Channel {
  readonly #h: WorkerControlInbound;
  constructor(socket: Duplex, handlers: WorkerControlInbound) {
    super(socket);
    this.#h = handlers;
  }

  sendReady(): void {
    this.frame(ControlType.Ready, 0);
  }
  sendPong(id: number): void {
    this.frame(ControlType.Pong, id);
  }
  sendRecycleRequest(msg: RecycleRequestMessage): void {
    this.jsonFrame(ControlType.RecycleRequest, msg);
  }
  sendAppHints(msg: AppHintsMessage): void {
    this.jsonFrame(ControlType.AppHints, msg);
  }
  /** `id`: the worker's own, echoed by the CredentialResult. */
  sendCredentialCheck(id: number, request: CredentialRequest): void {
    this.jsonFrame(ControlType.CredentialCheck, request, id);
  }
  /** Said last, as the process exits: written now, not on the next turn (there may be none). */
  sendExiting(msg: ExitingMessage): void {
    this.jsonFrame(ControlType.Exiting, msg);
    this.flushNow();
  }

  protected dispatch(type: number, stream: number, payload: Buffer): void {
    const t = type as WasControlType;
    switch (t) {
      case ControlType.Ping:
        this.#h.ping(stream);
        return;
      case ControlType.CredentialResult:
        this.#h.credentialResult(stream, decodeCredentialResult(payload));
        return;
      case ControlType.CredentialsChanged:
        this.#h.credentialsChanged();
        return;
      default: {
        const unknown: never = t;
        // WAS is trusted: an unknown type is a version mismatch, and the channel closes.
        throw new TypeError(`unexpected control message type ${String(unknown)} from WAS`);
      }
    }
  }

  protected onClosed(error: Error | undefined): void {
    this.#h.closed(error);
  }
}
