/**
 * Every accepted request answered once: the order of what happens to a
 * request between the broker and the agent (delivery-ledger.ts keeps what
 * must outlive a crash).
 *
 * 1. A new request waits for one of `limits.maxConcurrentRequests` run slots
 *    *before* it is acknowledged. The ingress holds the PUBACK (and mqtt.js
 *    reads nothing more from the broker meanwhile), so a backlog stays with
 *    the broker, which sends the next request when there is room: flow
 *    control, not refusal. Its deadline runs from its arrival here; a request
 *    whose deadline passes while it waits is answered DEADLINE_EXCEEDED.
 * 2. With a slot, it is journaled (synced), and only then acknowledged.
 * 3. It runs; its final answer is journaled (synced), then published to every
 *    reply address that asked for it; that each is in the durable outgoing
 *    store (outgoing-store.ts: from there it reaches the broker once) is
 *    noted. Video chunk messages go out as they come and are not stored.
 * 4. A request id already known (same reply topic + id) is not run again:
 *    on a reply address (topic + correlation) it was already answered or is
 *    being answered on, it is a retransmission and is only acknowledged;
 *    on a new one it waits for the running request's answer, or gets the
 *    stored answer at once.
 * 5. After a restart, requests journaled and not answered run again (their
 *    deadline still counted from their first arrival), and answers never
 *    handed to the outgoing store are published again (the store sends
 *    its own again with their packet ids).
 * 6. While shutting down, new deliveries are not acknowledged (the broker
 *    keeps them for the next start), running requests get `drainTimeoutMs`
 *    to finish, and what is unfinished stays in the journal.
 * 7. With `limits.maxConcurrentPerRequester`, a new request from a requester
 *    (its reply topic) that already has that many waiting or running is
 *    refused: answered RESOURCE_EXHAUSTED, and acknowledged only once the
 *    broker has that answer. Holding it instead would hold every requester
 *    behind it (acknowledgements go out in order, and the broker's window
 *    is shared), so one requester could still fill every slot. A refusal is
 *    not journaled: the same id sent again later runs.
 */
import { InferError, toInferError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { RunQueue } from '../../shared/run-queue.js';
import type { AgentRequest, AgentResponse, ChunkMessage } from '../request.js';
import { routeId, type DeliveryLedger, type LedgerEntry, type StoredRoute } from './delivery-ledger.js';
import { requestErrorResponse, type ResponsePayload } from './payload.js';
import { within } from '../../shared/within.js';

/** What the ingress hands requests to (the EdgeAgent, or anything that answers requests). */
export interface RequestHandler {
  /** `publishChunk` sends a video chunk's answer ahead of the response, to the same reply address. */
  handle(request: AgentRequest, publishChunk?: (message: ChunkMessage) => void): Promise<AgentResponse>;
}

/**
 * Publishes on a route; resolves true once the answer is in the durable
 * outgoing store (a chunk: once the broker acknowledged it). `tag` goes into
 * the store with the answer, so a restart can tell it was handed over.
 */
export type Publish = (route: StoredRoute, response: ResponsePayload, kind: 'answer' | 'chunk', tag?: string) => Promise<boolean>;

export interface IncomingRequest {
  key: string;
  request: AgentRequest;
  route: StoredRoute;
  /** Epoch ms. */
  receivedAt: number;
  payloadBytes: number;
}

export interface DeliveryCounts {
  /** Retransmissions of a request on a reply address already answered (or being answered): acknowledged only. */
  duplicates: number;
  /** Repeats on a new reply address that got the stored answer. */
  replayed: number;
  /** Repeats on a new reply address that waited for the running request's answer. */
  joined: number;
  /** Requests found unanswered in the journal at start and run again. */
  recovered: number;
  /** Answered DEADLINE_EXCEEDED before they ran (waiting for a slot, or across a restart). */
  expired: number;
  /** Answered RESOURCE_EXHAUSTED: their requester already had limits.maxConcurrentPerRequester in the agent. */
  overRequesterLimit: number;
}

export class RequestDelivery {
  readonly counts: DeliveryCounts = { duplicates: 0, replayed: 0, joined: 0, recovered: 0, expired: 0, overRequesterLimit: 0 };
  /** Reply topic → its requests waiting for a slot or running. */
  private readonly perRequester = new Map<string, number>();
  private readonly queue: RunQueue;
  private readonly pending = new Set<Promise<unknown>>();
  /** Requests waiting for a run slot (not journaled yet): a redelivery after a reconnect must find them too. */
  private readonly waiting = new Map<string, { routeId: string; journaled: Promise<boolean> }>();
  private readonly expiry: NodeJS.Timeout;
  private closing = false;
  private stopped = false;

  constructor(
    private readonly ledger: DeliveryLedger,
    private readonly handler: RequestHandler,
    private readonly publish: Publish,
    private readonly settings: { maxConcurrentRequests: number; maxConcurrentPerRequester: number; defaultDeadlineMs: number; answerRetentionMs: number },
    private readonly log: Logger,
  ) {
    this.queue = new RunQueue({ label: 'the agent', concurrency: settings.maxConcurrentRequests, maxWaiting: Infinity });
    this.expiry = setInterval(() => ledger.expire(Date.now()), Math.min(settings.answerRetentionMs / 10, 60_000)).unref();
  }

  /** Requests waiting for a slot or running. */
  get inFlight(): number {
    return this.queue.inFlight;
  }

  /** Resolves true once the request may be acknowledged (journaled, or already known); false: leave it with the broker. */
  receive(incoming: IncomingRequest): Promise<boolean> {
    if (this.closing) return Promise.resolve(false);
    const entry = this.ledger.get(incoming.key);
    if (entry) return this.repeat(entry, incoming);
    const waiting = this.waiting.get(incoming.key);
    if (waiting) {
      // Acknowledged once the first delivery is journaled, then handled like any repeat.
      return waiting.journaled.then((ok) => {
        const journaled = this.ledger.get(incoming.key);
        return ok && journaled ? this.repeat(journaled, incoming) : false;
      });
    }
    const limit = this.settings.maxConcurrentPerRequester;
    const requester = incoming.route.topic;
    const held = this.perRequester.get(requester) ?? 0;
    if (limit > 0 && held >= limit) return this.refuseOverLimit(incoming, held);
    this.perRequester.set(requester, held + 1);
    let ack!: (ok: boolean) => void;
    const journaled = new Promise<boolean>((resolve) => (ack = resolve));
    this.waiting.set(incoming.key, { routeId: routeId(incoming.route), journaled });
    void journaled.then(() => this.waiting.delete(incoming.key));
    let released = false;
    // Before its answer goes out, so a requester that got the answer may send the next at once.
    const release = () => {
      if (!released) this.release(requester);
      released = true;
    };
    this.track(this.run(incoming, ack, false, release).finally(release));
    return journaled;
  }

  /**
   * After a start: publishes answers never handed to the outgoing store
   * (`stored` says which were: the process may have died between the store's
   * put and the ledger's note), runs what was accepted and not answered.
   */
  recover(stored: (tag: string) => boolean): void {
    for (const { entry, route } of this.ledger.unpublished()) {
      if (stored(answerTag(entry.key, route))) this.track(this.ledger.published(entry.key, route));
      else this.track(this.send(entry.key, route, entry.answer!));
    }
    for (const entry of this.ledger.unanswered()) {
      this.counts.recovered++;
      const [{ route }] = entry.routes.values();
      const incoming = { key: entry.key, request: entry.request!, route, receivedAt: entry.receivedAt, payloadBytes: entry.requestBytes };
      this.track(this.run(incoming, () => undefined, true));
    }
  }

  /** Stops acknowledging, lets running requests finish within `timeoutMs`, closes the journal. */
  async drain(timeoutMs: number): Promise<void> {
    this.closing = true;
    clearInterval(this.expiry);
    this.queue.close('the agent is shutting down');
    await within(Promise.allSettled(this.pending), timeoutMs);
    this.stopped = true;
    await this.ledger.close();
  }

  private async refuseOverLimit({ request, route }: IncomingRequest, held: number): Promise<boolean> {
    this.counts.overRequesterLimit++;
    const message = `request ${request.id}: this requester (reply topic ${route.topic}) already has ${held} requests waiting or running in the agent, the limit (limits.maxConcurrentPerRequester) — wait for their answers, then send it again`;
    this.log.warn({ id: request.id, replyTo: route.topic, held }, 'request refused: its requester is at limits.maxConcurrentPerRequester');
    // Acknowledged once the refusal is in the durable outgoing store (if it never gets there, the broker redelivers the request).
    return this.publish(route, requestErrorResponse('RESOURCE_EXHAUSTED', message, request.id), 'answer');
  }

  private release(requester: string): void {
    const held = (this.perRequester.get(requester) ?? 1) - 1;
    if (held > 0) this.perRequester.set(requester, held);
    else this.perRequester.delete(requester);
  }

  private async repeat(entry: LedgerEntry, { route, request }: IncomingRequest): Promise<boolean> {
    if (entry.routes.has(routeId(route))) {
      this.counts.duplicates++;
      this.log.info({ id: request.id, traceparent: route.traceparent, replyTo: route.topic }, 'retransmitted request: answered (or being answered) on this reply address already');
      return true;
    }
    await this.ledger.addRoute(entry.key, route);
    if (entry.answer) {
      this.counts.replayed++;
      this.track(this.send(entry.key, route, entry.answer));
    } else {
      this.counts.joined++;
    }
    this.log.info({ id: request.id, traceparent: route.traceparent, replyTo: route.topic, answered: Boolean(entry.answer) }, 'repeated request id: answered from its one run');
    return true;
  }

  /** `computed` is called once the answer is known, before it is journaled and published. */
  private async run(incoming: IncomingRequest, ack: (ok: boolean) => void, recovered: boolean, computed?: () => void): Promise<void> {
    const { key, request, route, receivedAt } = incoming;
    const deadlineMs = request.deadlineMs ?? this.settings.defaultDeadlineMs;
    const deadlineAt = performance.now() + deadlineMs - (Date.now() - receivedAt);
    let response: ResponsePayload;
    try {
      const { value } = await this.queue.run(
        async () => {
          if (!recovered) {
            await this.ledger.whenRoom(incoming.payloadBytes);
            await this.ledger.accept(key, request, route, receivedAt);
          }
          ack(true);
          return this.compute(key, request, deadlineAt, deadlineMs);
        },
        { at: deadlineAt, what: `its deadlineMs ${deadlineMs}` },
        `request ${request.id}`,
      );
      response = value;
    } catch (err) {
      const failure = toInferError(err);
      if (this.closing && failure.code === 'UNAVAILABLE') return ack(false);
      if (failure.code !== 'DEADLINE_EXCEEDED') {
        this.log.error({ id: request.id, err: failure.message }, 'cannot journal a request; answered with an error, not kept');
        ack(true);
        void this.publish(route, requestErrorResponse('UNAVAILABLE', `the agent cannot record this request (${failure.message}) — publish it again`, request.id), 'answer');
        return;
      }
      this.counts.expired++;
      if (!recovered) await this.ledger.accept(key, undefined, route, receivedAt);
      ack(true);
      response = requestErrorResponse('DEADLINE_EXCEEDED', `${failure.message} — it was not run`, request.id);
    }
    computed?.();
    await this.answer(key, response);
  }

  private async compute(key: string, request: AgentRequest, deadlineAt: number, deadlineMs: number): Promise<ResponsePayload> {
    const leftMs = Math.floor(deadlineAt - performance.now());
    if (leftMs < 1) {
      this.counts.expired++;
      return requestErrorResponse('DEADLINE_EXCEEDED', `request ${request.id}: its deadlineMs ${deadlineMs} passed before it could run — it was not run`, request.id);
    }
    const publishChunk = (message: ChunkMessage) => {
      for (const { route } of this.ledger.get(key)?.routes.values() ?? []) void this.publish(route, message, 'chunk');
    };
    try {
      return await this.handler.handle({ ...request, deadlineMs: leftMs }, publishChunk);
    } catch (err) {
      const failure = toInferError(err);
      this.log.error({ id: request.id, err: failure.message }, 'agent failed on a request');
      return requestErrorResponse(failure.code, `the agent failed on this request: ${failure.message}`, request.id);
    }
  }

  /** Journals the answer, then publishes it on every route that asked so far (later repeats get it from the journal). */
  private async answer(key: string, response: ResponsePayload): Promise<void> {
    if (this.stopped) {
      this.log.warn({ id: (response as { id?: string }).id }, 'answered after the drain timeout: not published; the next start runs it again');
      return;
    }
    const routes = [...(this.ledger.get(key)?.routes.values() ?? [])].map((r) => r.route);
    await this.ledger.answer(key, response);
    await Promise.all(routes.map((route) => this.send(key, route, response)));
  }

  private async send(key: string, route: StoredRoute, response: ResponsePayload): Promise<void> {
    if (!(await this.publish(route, response, 'answer', answerTag(key, route))) || this.stopped) return;
    await this.ledger.published(key, route).catch((err: Error) => this.log.warn({ err: err.message }, 'cannot note a published answer; it may be published again after a restart'));
  }

  private track(work: Promise<unknown>): void {
    const tracked = work
      .catch((err: Error) => {
        if (err instanceof InferError || !this.stopped) this.log.error({ err: err.stack ?? err.message }, 'request delivery failed');
      })
      .finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }
}

function answerTag(key: string, route: StoredRoute): string {
  return `${key}\u0000${routeId(route)}`;
}
