/**
 * The coordinator's side of the cluster: a ROUTER on `tcp://<bind>:<port>` that daemons of
 * other machines register with (CURVE server; a ZAP policy admits only authorised keys),
 * their heartbeats, and the messages to and from them. A daemon silent for LOST_AFTER_MS
 * is lost; one that registers again (a restarted daemon, or the same after a network cut)
 * takes its machine id back. A registration carries the parts the daemon runs (a restarted
 * coordinator takes them over: hub.ts). What a daemon sent before it registered (its
 * messages still queued for a coordinator that has since restarted) is held, and handled
 * once it has registered, after its report.
 */
import * as zmq from 'zeromq';
import { decode, encode, CLUSTER_PROTOCOL_VERSION, type CoordinatorMessage, type DaemonMessage, type PartReport } from './messages';
import * as crypto from 'node:crypto';
import { allowKeys, authorizedKeys, dropKeys, isKey, keyProof, registrationContext, type KeyPair } from './keys';

/** Heartbeats come every HEARTBEAT_MS; a daemon is lost after four missed ones. */
export const HEARTBEAT_MS = 500;
export const LOST_AFTER_MS = 4 * HEARTBEAT_MS;
const ZAP_DOMAIN = 'dora-cluster';
/** Messages held per connection that has not registered yet, and for how long. */
const HELD_MAX = 1000;
const HELD_FOR_MS = 10_000;

export interface ConnectedDaemon {
  readonly machine: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The address its data socket is reached at. */
  readonly address: string;
  readonly publicKey: string;
  readonly pid: number;
  readonly connectedAt: Date;
  lastHeartbeat: number;
  identity: Buffer;
}

export interface ClusterHandlers {
  /** A message of a daemon that is registered. */
  readonly onMessage: (machine: string, message: DaemonMessage) => void;
  /** A daemon stopped answering (or registered again as a new process: its old runs are gone). */
  readonly onLost: (machine: string, why: string) => void;
  /**
   * A daemon registered (the first time, or again: after it was lost, or with a restarted
   * coordinator), reporting the parts it runs; returns the reports not taken over, and why.
   */
  readonly onRegistered: (daemon: ConnectedDaemon, parts: readonly PartReport[]) => { dataflow: string; why: string }[];
  /** Machine ids taken by the coordinator itself (its local daemon). */
  readonly reserved: readonly string[];
  readonly log: (line: string) => void;
}

export class ClusterServer {
  private readonly router = new zmq.Router();
  private readonly daemons = new Map<string, ConnectedDaemon>();
  /** Per connection not registered (hex identity): what it sent, and since when. */
  private readonly strangers = new Map<string, { since: number; messages: DaemonMessage[] }>();
  private readonly sendQueue: Buffer[][] = [];
  private sending = false;
  private timer?: NodeJS.Timeout;
  /** This coordinator's keys (undefined with --insecure): registrations must prove the key they state. */
  private keys?: KeyPair;
  endpoint = '';

  constructor(private readonly handlers: ClusterHandlers) {}

  /** Binds `tcp://address:port`, with CURVE unless `keys` is undefined (`--insecure`). */
  async bind(address: string, port: number, keys: KeyPair | undefined): Promise<void> {
    this.router.linger = 0;
    this.router.maxMessageSize = 64 << 20;
    this.keys = keys;
    if (keys) {
      // authorised keys are read at each connection: `dora cluster authorize` needs no restart
      await allowKeys(ZAP_DOMAIN, (key) => key === keys.publicKey || authorizedKeys().has(key));
      this.router.curveServer = true;
      this.router.curveSecretKey = keys.secretKey;
      this.router.zapDomain = ZAP_DOMAIN;
    }
    await this.router.bind(`tcp://${address}:${port}`);
    this.endpoint = this.router.lastEndpoint ?? `tcp://${address}:${port}`;
    void this.serve();
    this.timer = setInterval(() => this.checkHeartbeats(), HEARTBEAT_MS);
    this.timer.unref();
  }

  list(): ConnectedDaemon[] {
    return [...this.daemons.values()].sort((a, b) => a.machine.localeCompare(b.machine));
  }

  get(machine: string): ConnectedDaemon | undefined {
    return this.daemons.get(machine);
  }

  send(machine: string, message: CoordinatorMessage): boolean {
    const daemon = this.daemons.get(machine);
    if (!daemon) return false;
    this.enqueue([daemon.identity, encode(message)]);
    return true;
  }

  /** Closes the listener; tells the daemons to stop their dataflows unless `notify` is false (a coordinator that could not start). */
  close(notify = true): void {
    clearInterval(this.timer);
    if (notify) for (const d of this.daemons.values()) this.enqueue([d.identity, encode({ t: 'shutdown' })]);
    // let the shutdown notices go out before the socket closes
    setTimeout(() => {
      this.router.close();
      dropKeys(ZAP_DOMAIN);
    }, 200);
  }

  private enqueue(frames: Buffer[]): void {
    this.sendQueue.push(frames);
    if (!this.sending) void this.pump();
  }

  private async pump(): Promise<void> {
    this.sending = true;
    while (this.sendQueue.length > 0) {
      try {
        await this.router.send(this.sendQueue.shift()!);
      } catch {
        // a daemon that went away: the heartbeat check says so
      }
    }
    this.sending = false;
  }

  private async serve(): Promise<void> {
    try {
      for await (const [identity, frame] of this.router) {
        const message = decode<DaemonMessage>(frame);
        if (!message) continue;
        const daemon = [...this.daemons.values()].find((d) => d.identity.equals(identity));
        if (message.t === 'register') {
          this.register(identity, message);
          continue;
        }
        if (!daemon) {
          // not registered (the coordinator restarted, or it was declared lost): ask it to register
          // again, once; what it sent meanwhile is handled after its registration
          const key = identity.toString('hex');
          let held = this.strangers.get(key);
          if (!held) {
            held = { since: performance.now(), messages: [] };
            this.strangers.set(key, held);
            this.enqueue([identity, encode({ t: 'refused', message: 'not registered: register again' })]);
          }
          if (message.t === 'part' && held.messages.length < HELD_MAX) held.messages.push(message);
          continue;
        }
        daemon.lastHeartbeat = performance.now();
        if (message.t === 'heartbeat') continue;
        this.handlers.onMessage(daemon.machine, message);
      }
    } catch {
      // closed
    }
  }

  private register(identity: Buffer, message: Extract<DaemonMessage, { t: 'register' }>): void {
    const refuse = (why: string) => this.enqueue([identity, encode({ t: 'refused', message: why })]);
    if (message.version !== CLUSTER_PROTOCOL_VERSION) return refuse(`cluster protocol version ${message.version} is not this coordinator's (${CLUSTER_PROTOCOL_VERSION}): use matching dora-ts versions`);
    if (typeof message.machine !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(message.machine)) return refuse(`machine id ${JSON.stringify(message.machine)} may contain only letters, digits, '_', '-' and '.'`);
    if (this.handlers.reserved.includes(message.machine)) return refuse(`machine id "${message.machine}" is the coordinator's own machine: choose another --machine-id`);
    if (this.keys && !this.proven(message)) return refuse(`this daemon did not prove it holds the secret key of the public key it states (${String(message.publicKey)})`);
    const existing = this.daemons.get(message.machine);
    if (existing && !existing.identity.equals(identity)) {
      if (existing.pid === message.pid && performance.now() - existing.lastHeartbeat < LOST_AFTER_MS) {
        existing.identity = identity; // the same process, reconnected
      } else if (performance.now() - existing.lastHeartbeat < LOST_AFTER_MS) {
        return refuse(`machine id "${message.machine}" is taken by a daemon that is connected (pid ${existing.pid} at ${existing.address})`);
      } else {
        this.daemons.delete(message.machine);
        this.handlers.onLost(message.machine, 'its daemon was replaced by a new one');
      }
    }
    const daemon: ConnectedDaemon = {
      machine: message.machine,
      labels: message.labels ?? {},
      address: message.dataAddress,
      publicKey: message.publicKey,
      pid: message.pid,
      connectedAt: new Date(),
      lastHeartbeat: performance.now(),
      identity,
    };
    const again = existing !== undefined;
    this.daemons.set(message.machine, daemon);
    const parts = Array.isArray(message.parts) ? message.parts : [];
    const held = this.strangers.get(identity.toString('hex'))?.messages ?? [];
    this.strangers.delete(identity.toString('hex'));
    this.handlers.log(
      `daemon of machine ${message.machine} ${again ? 're-registered' : 'registered'} (pid ${message.pid}, ${message.dataAddress}${Object.keys(daemon.labels).length ? `, labels ${Object.entries(daemon.labels).map(([k, v]) => `${k}=${v}`).join(',')}` : ''}` +
        `${parts.length > 0 ? `, parts of ${parts.length} dataflow(s)` : ''}${held.length > 0 ? `, ${held.length} message(s) it sent before registering` : ''})`,
    );
    const refused = this.handlers.onRegistered(daemon, parts);
    this.enqueue([identity, encode({ t: 'registered', machine: message.machine, ...(refused.length > 0 ? { refused } : {}) })]);
    for (const m of held) this.handlers.onMessage(daemon.machine, m);
  }

  /** The registration's proof matches the key it states (keys.ts keyProof): dataflows trust a machine's key, so it must be its own. */
  private proven(message: Extract<DaemonMessage, { t: 'register' }>): boolean {
    if (typeof message.publicKey !== 'string' || !isKey(message.publicKey) || typeof message.proof !== 'string') return false;
    const expected = Buffer.from(keyProof(this.keys!, message.publicKey, registrationContext(message.machine, message.publicKey)));
    const given = Buffer.from(message.proof);
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  }

  private checkHeartbeats(): void {
    const now = performance.now();
    for (const [key, held] of this.strangers) if (now - held.since > HELD_FOR_MS) this.strangers.delete(key);
    for (const d of [...this.daemons.values()]) {
      if (now - d.lastHeartbeat <= LOST_AFTER_MS) continue;
      this.daemons.delete(d.machine);
      const why = `its daemon has not been heard from for ${Math.round(now - d.lastHeartbeat)} ms`;
      this.handlers.log(`machine ${d.machine} lost: ${why}`);
      this.handlers.onLost(d.machine, why);
    }
  }
}
