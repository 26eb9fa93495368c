/**
 * Data between machines, daemon to daemon: a shared-memory handle never leaves its machine,
 * so a sender with receivers on other machines sends its payloads inline (the daemon sets
 * its shared-memory threshold out of reach), and its daemon forwards the messages of those
 * outputs to the daemons of the receivers over TCP, where they are published to the
 * receivers on the daemon's events socket like a timer's ticks (docs/architecture.md,
 * "Machines"). The messages are forwarded as they are, frame for frame: topics, sequence
 * numbers and end-of-stream mean the same to the receiving core as from a local sender.
 *
 * Export side: one XPUB on `tcp://<data address>:<port>`, a CURVE server that accepts only
 * the keys of the dataflow's daemons (ZAP), fed by one SUB per (sender, remote receiver),
 * so the sender's start barrier counts each remote receiver once. Import side: one SUB per
 * exporting machine, a CURVE client with this daemon's keys.
 */
import * as zmq from 'zeromq';
import { decodeDataHeader } from '../../protocol/data';
import { SendQueue } from '../sendqueue';
import { allowKeys, dropKeys, type KeyPair } from './keys';

type Frames = Buffer[];

/**
 * The sockets that read from nodes have an I/O thread of their own: a sender's messages
 * must leave it as fast as it sends them, even while the TCP side (encrypting, on the
 * default context's thread) falls behind. A node that exits keeps its unsent messages
 * only for its linger (1 s), so a feed that fell behind would lose its last messages.
 */
let feedContext: zmq.Context | undefined;
const feeds = () => (feedContext ??= new zmq.Context({ ioThreads: 1 }));

/**
 * Closing waits until every forwarded output's end of stream has gone through, or nothing
 * came for DRAIN_QUIET_MS (a sender that crashed sends none, and what it had sent is gone
 * after its 1 s linger), then for the queue to empty: each at most DRAIN_LIMIT_MS.
 */
const DRAIN_QUIET_MS = 1500;
const DRAIN_LIMIT_MS = 60_000;

export class DataExport {
  private readonly pub = new zmq.XPublisher();
  private readonly out = new SendQueue(this.pub);
  private readonly feeds: zmq.Subscriber[] = [];
  /** Subscriptions the XPUB has seen, per topic (one per importing machine). */
  private readonly seen = new Map<string, number>();
  private closed = false;
  private lastForward = performance.now();
  /** Forwarded topics whose end of stream has not gone through yet. */
  private readonly open = new Set<string>();

  constructor(
    private readonly domain: string,
    private readonly onSubscription: () => void,
  ) {}

  /** Binds the CURVE server socket on `address` (a free port) and returns its endpoint. */
  async bind(address: string, keys: KeyPair, peerKeys: readonly string[]): Promise<string> {
    const allowed = new Set(peerKeys);
    await allowKeys(this.domain, (key) => allowed.has(key));
    this.pub.linger = 0;
    this.pub.sendHighWaterMark = 0; // never drop: an end of stream must arrive (receivers' queues drop)
    this.pub.verbosity = 'allSubs';
    this.pub.curveServer = true;
    this.pub.curveSecretKey = keys.secretKey;
    this.pub.zapDomain = this.domain;
    await this.pub.bind(`tcp://${address}:0`);
    void this.watch();
    return this.pub.lastEndpoint!;
  }

  /** Forwards `topic` from the sender's data socket, subscribing once per remote receiver of it. */
  feed(senderEndpoint: string, topic: string, receivers: number): void {
    for (let i = 0; i < receivers; i++) {
      const sub = new zmq.Subscriber({ context: feeds() });
      sub.linger = 0;
      sub.receiveHighWaterMark = 0;
      sub.connect(senderEndpoint);
      sub.subscribe(topic);
      this.feeds.push(sub);
      // the first feed of a topic forwards it; the others only count at the sender's barrier
      if (i === 0) {
        this.open.add(topic);
        void this.forward(sub);
      }
      else void this.drain(sub);
    }
  }

  /** How many machines have subscribed to `topic`. */
  subscriptions(topic: string): number {
    return this.seen.get(topic) ?? 0;
  }

  /**
   * Closes once what the senders sent last has gone out: their final messages (end of
   * stream among them) may still be on their way, or queued here behind a backlog, when
   * their processes have ended. Nothing is dropped for a peer that is still connected.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const waitFor = async (done: () => boolean) => {
      for (const end = performance.now() + DRAIN_LIMIT_MS; !done() && performance.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    };
    await waitFor(() => this.open.size === 0 || performance.now() - this.lastForward >= DRAIN_QUIET_MS);
    for (const sub of this.feeds) sub.close();
    await waitFor(() => this.out.pending === 0);
    this.pub.linger = DRAIN_LIMIT_MS; // what ZeroMQ still holds goes out before the socket goes
    this.pub.close();
    dropKeys(this.domain);
  }

  private async forward(sub: zmq.Subscriber): Promise<void> {
    try {
      for await (const frames of sub) {
        this.lastForward = performance.now();
        this.out.send(frames as Frames);
        if (frames.length > 1 && isEndOfStream(frames[1])) this.open.delete(frames[0].toString('utf8'));
      }
    } catch {
      // closed
    }
  }

  private async drain(sub: zmq.Subscriber): Promise<void> {
    try {
      for await (const _ of sub) void _;
    } catch {
      // closed
    }
  }

  private async watch(): Promise<void> {
    try {
      for await (const [frame] of this.pub) {
        if (frame.length === 0) continue;
        const topic = frame.subarray(1).toString('utf8');
        this.seen.set(topic, Math.max(0, (this.seen.get(topic) ?? 0) + (frame[0] === 1 ? 1 : -1)));
        this.onSubscription();
      }
    } catch {
      // closed
    }
  }
}

function isEndOfStream(header: Buffer): boolean {
  try {
    return decodeDataHeader(header).kind === 'eos';
  } catch {
    return false;
  }
}

/** The receiving side: subscribes to other machines' exports and hands each message on. */
export class DataImport {
  private readonly subs: zmq.Subscriber[] = [];

  constructor(
    private readonly keys: KeyPair,
    private readonly deliver: (frames: Frames) => void,
  ) {}

  /** Subscribes to `topics` at one machine's export socket. */
  connect(endpoint: string, serverKey: string, topics: readonly string[]): void {
    const sub = new zmq.Subscriber({ context: feeds() });
    sub.linger = 0;
    sub.receiveHighWaterMark = 0;
    sub.curveServerKey = serverKey;
    sub.curvePublicKey = this.keys.publicKey;
    sub.curveSecretKey = this.keys.secretKey;
    sub.connect(endpoint);
    for (const topic of topics) sub.subscribe(topic);
    this.subs.push(sub);
    void this.receive(sub);
  }

  close(): void {
    for (const sub of this.subs) sub.close();
  }

  private async receive(sub: zmq.Subscriber): Promise<void> {
    try {
      for await (const frames of sub) this.deliver(frames as Frames);
    } catch {
      // closed
    }
  }
}
