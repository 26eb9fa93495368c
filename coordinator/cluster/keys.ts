/**
 * The cluster's keys: ZeroMQ CURVE on every TCP link. The coordinator has one key pair,
 * created once (0600) in its state folder; a daemon has its own (created on first use) and
 * joins only when it knows the coordinator's public key and its own public key is
 * authorised: listed in the coordinator's `authorized_keys` (`dora cluster authorize`),
 * which is read at each connection, so authorising needs no restart.
 *
 * Which client keys a CURVE server accepts is decided by a ZAP handler (ZeroMQ RFC 27),
 * one per process on `inproc://zeromq.zap.01`, dispatching on each socket's ZAP domain.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zmq from 'zeromq';
import { DoraError, ErrorCode } from '../errors';
import { stateDir } from '../userdirs';

export interface KeyPair {
  readonly publicKey: string;
  readonly secretKey: string;
}

/** A CURVE key in Z85 text: 40 characters of ZeroMQ's Z85 alphabet. */
const Z85_KEY = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

export function isKey(text: string): boolean {
  return Z85_KEY.test(text);
}

/** `<state dir>/cluster`, 0700. */
export function clusterDir(): string {
  const dir = path.join(stateDir(), 'cluster');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Reads a key pair file, or creates it (0600, never half-written) when there is none. */
export function loadOrCreateKeyPair(file: string): KeyPair {
  try {
    const pair = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<KeyPair>;
    if (typeof pair.publicKey !== 'string' || !isKey(pair.publicKey) || typeof pair.secretKey !== 'string' || !isKey(pair.secretKey)) {
      throw new DoraError(`${file} does not hold a CURVE key pair ({"publicKey", "secretKey"} in Z85)`, { code: ErrorCode.SYSTEM });
    }
    if ((fs.statSync(file).mode & 0o077) !== 0) throw new DoraError(`${file} holds a secret key but others can read it: chmod 600 ${file}`, { code: ErrorCode.SYSTEM });
    return { publicKey: pair.publicKey, secretKey: pair.secretKey };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const pair = zmq.curveKeyPair();
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, JSON.stringify(pair) + '\n', { mode: 0o600, flag: 'wx' });
  try {
    fs.linkSync(temp, file); // fails if another process created it meanwhile: theirs wins
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(temp, { force: true });
  }
  return loadOrCreateKeyPair(file);
}

/** The coordinator's key pair (created on first use); its public key is also written to `coordinator.pub` to hand out. */
export function coordinatorKeys(): KeyPair {
  const dir = clusterDir();
  const pair = loadOrCreateKeyPair(path.join(dir, 'coordinator.key'));
  const pub = path.join(dir, 'coordinator.pub');
  if (!fs.existsSync(pub)) fs.writeFileSync(pub, pair.publicKey + '\n', { mode: 0o644 });
  return pair;
}

/** A daemon's key pair: `file`, or `<state dir>/cluster/daemon.key`. */
export function daemonKeys(file?: string): KeyPair {
  return loadOrCreateKeyPair(file ?? path.join(clusterDir(), 'daemon.key'));
}

/** The coordinator's list of authorised public keys: one per line, anything after the key and a space is a comment. */
export function authorizedKeysFile(): string {
  return path.join(clusterDir(), 'authorized_keys');
}

export function authorizedKeys(file = authorizedKeysFile()): Set<string> {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    // none authorised yet
  }
  // '#' is a Z85 character: a line's first word is its key, what follows a space is a comment
  return new Set(text.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter(isKey));
}

/**
 * The command that authorises `publicKey`, ready to paste into a shell: quoted (Z85 uses
 * `&`, `(`, `$`, `<`... but never a single quote), after `--` (a key may begin with `-`).
 */
export function authorizeCommand(publicKey: string): string {
  return `dora cluster authorize -- '${publicKey}'`;
}

/** Adds a public key to the authorised keys (`dora cluster authorize`); returns false if it was there already. */
export function authorize(publicKey: string, comment?: string, file = authorizedKeysFile()): boolean {
  if (!isKey(publicKey)) throw new DoraError(`"${publicKey}" is not a CURVE public key (40 characters of Z85, as \`dora daemon\` prints)`, { code: ErrorCode.INVALID_ARGUMENT });
  if (authorizedKeys(file).has(publicKey)) return false;
  fs.appendFileSync(file, `${publicKey}${comment ? ` # ${comment.replace(/\n/g, ' ')}` : ''}\n`, { mode: 0o600 });
  return true;
}

/** Reads a key given as Z85 text, or as a file holding it (e.g. a copy of `coordinator.pub`). */
export function keyArgument(value: string, what: string): string {
  const text = isKey(value.trim()) ? value.trim() : readKeyFile(value, what);
  return text;
}

function readKeyFile(file: string, what: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch {
    throw new DoraError(`${what} "${file}" is neither a CURVE public key (40 characters of Z85) nor a file holding one`, { code: ErrorCode.INVALID_ARGUMENT });
  }
  if (!isKey(text)) throw new DoraError(`${file} does not hold a CURVE public key (40 characters of Z85)`, { code: ErrorCode.INVALID_ARGUMENT });
  return text;
}

/** Decides whether a client with this public key (Z85) may connect to the sockets of one ZAP domain. */
export type KeyPolicy = (publicKey: string) => boolean;

const policies = new Map<string, KeyPolicy>();
let handler: zmq.Reply | undefined;

/**
 * Lets sockets with ZAP domain `domain` accept only the clients `policy` allows; starts the
 * process's ZAP handler on first use. CURVE clients of domains without a policy are refused.
 */
export async function allowKeys(domain: string, policy: KeyPolicy): Promise<void> {
  policies.set(domain, policy);
  if (handler) return;
  handler = new zmq.Reply();
  handler.linger = 0;
  await handler.bind('inproc://zeromq.zap.01');
  void serveZap(handler);
}

/** Forgets a domain's policy (its sockets are closed); the handler stops with the last one. */
export function dropKeys(domain: string): void {
  policies.delete(domain);
  if (policies.size === 0 && handler) {
    handler.close();
    handler = undefined;
  }
}

async function serveZap(socket: zmq.Reply): Promise<void> {
  try {
    for await (const frames of socket) {
      // version, request id, domain, address, identity, mechanism, credentials...
      const [version, requestId, domain, , , mechanism, credentials] = frames;
      const policy = policies.get(domain?.toString() ?? '');
      const kind = mechanism?.toString();
      let allowed = kind === 'NULL'; // the daemon's own unix sockets have no keys: the folder's permissions guard them
      if (kind === 'CURVE' && policy && credentials?.length === 32) allowed = policy(z85(credentials));
      await socket.send([version ?? '1.0', requestId ?? '', allowed ? '200' : '400', allowed ? 'OK' : 'key not authorised', '', '']);
    }
  } catch {
    // closed
  }
}

const Z85_CHARS = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

/** Z85-encodes 32 bytes (ZeroMQ's key text). */
export function z85(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let value = ((bytes[i] << 24) >>> 0) + (bytes[i + 1] << 16) + (bytes[i + 2] << 8) + bytes[i + 3];
    const chunk: string[] = [];
    for (let j = 0; j < 5; j++) {
      chunk.unshift(Z85_CHARS[value % 85]);
      value = Math.floor(value / 85);
    }
    out += chunk.join('');
  }
  return out;
}

/** Decodes Z85 key text (40 characters) into its 32 bytes. */
export function z85Decode(text: string): Buffer {
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) value = value * 85 + Z85_CHARS.indexOf(text[i + j]);
    out.writeUInt32BE(value, (i / 5) * 4);
  }
  return out;
}

/** PKCS #8 DER header of an X25519 private key (RFC 8410): the 32 secret bytes follow. */
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * The CURVE key pair a daemon's part of one dataflow serves and connects with (its nodes
 * read it from the part's key file): derived from the daemon's own secret key and the
 * dataflow's id, so a replacement part on the same daemon (after the machine was lost and
 * came back, even as a new daemon process with the same key file) has the same key pair,
 * which the other parts' nodes already admit and connect with.
 */
export function partKeyPair(own: KeyPair, dataflow: string): KeyPair {
  const secret = crypto.createHmac('sha256', z85Decode(own.secretKey)).update(`dora-ts part key\0${dataflow}`).digest();
  const privateKey = crypto.createPrivateKey({ key: Buffer.concat([X25519_PKCS8, secret]), format: 'der', type: 'pkcs8' });
  const publicKey = Buffer.from(crypto.createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url');
  return { publicKey: z85(publicKey), secretKey: z85(secret) };
}

/**
 * Proof that one holds the secret key of `own.publicKey`, for the holder of
 * `peerPublicKey`'s secret key: an HMAC of `context` keyed by the X25519 secret the two key
 * pairs share (CURVE keys are X25519 keys), which each side computes with its own secret.
 * The daemon sends it at registration over the CURVE link, so the coordinator knows the
 * public key a daemon states is the one it holds (zeromq.js does not say which key a
 * message came with).
 */
export function keyProof(own: KeyPair, peerPublicKey: string, context: string): string {
  const b64 = (z: string) => z85Decode(z).toString('base64url');
  const privateKey = crypto.createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64(own.secretKey), x: b64(own.publicKey) }, format: 'jwk' });
  const publicKey = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64(peerPublicKey) }, format: 'jwk' });
  return crypto.createHmac('sha256', crypto.diffieHellman({ privateKey, publicKey })).update(context).digest('base64');
}

/** What a daemon's registration proof covers: its machine id and the key it states. */
export function registrationContext(machine: string, publicKey: string): string {
  return `dora-cluster register ${machine} ${publicKey}`;
}
