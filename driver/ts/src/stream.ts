// Large objects to and from a node whose arena this process does not map
// (another machine, or `sameMachine: false`): raw push and pull connections
// to the node's port, the framing nodes pull objects from each other with
// (see `reef_core::wire` in the Rust sources). A request names one
// contiguous range; its bytes follow with no envelope, written straight from
// the caller's buffer and read straight into the result (`onread` with a
// buffer per read: no intermediate copy). Large objects use two connections.
//
// put: the session creates a buffer of the declared size
// (`create_buffer { stream: true }`), pushes fill it, `seal` makes the
// object; a failed push makes the node discard the buffer.
// get: the node answers `get { stream_threshold }` with `streamed` (the
// size; the object pinned), pulls read it, then the driver sends `unpin`.

import { connect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { isIP } from "node:net";

import { fromProto, ReefError, ConnectionError } from "./errors.js";
import type { Error__Output as ProtoError } from "./gen/reef/v1/Error.js";

/**
 * Objects at least this large are streamed; smaller ones go inline in the
 * session (below it the two extra session round trips of a streamed put
 * cost more than the inline path's copies).
 */
export const STREAM_THRESHOLD = 1 << 20;
/** Each stripe (one connection) moves at least this much... */
const STRIPE_MIN = 64 << 20;
/** ...and an object is cut into at most this many. */
const MAX_STRIPES = 2;
/** Idle connections kept. */
const MAX_IDLE = 8;

const PULL_MAGIC = Buffer.from([0xee, 0x52, 0x45, 0x45, 0x46, 0x50, 0x4c, 1]);
const PUSH_MAGIC = Buffer.from([0xee, 0x52, 0x45, 0x45, 0x46, 0x50, 0x55, 1]);
/** `Status` values of a reply header (`reef_core::wire::Status`). */
const STATUS_CODES = ["OK", "UNAUTHENTICATED", "UNKNOWN_OBJECT", "INTERNAL", "BAD_ARGUMENT", "STORE_FULL", "INTERNAL"];

const EMPTY = new Uint8Array(0);

/** The typed error of a refused request: its message is `CODE: text`. */
function replyError(status: number, message: string): ReefError {
  const m = /^([A-Z_]+): ([\s\S]*)$/.exec(message);
  const code = m ? m[1]! : (STATUS_CODES[status] ?? "INTERNAL");
  return fromProto({ code, message: m ? m[2]! : message, backtrace: "" } as ProtoError);
}

/**
 * One raw connection: exact reads into caller-supplied memory. Node asks
 * for the buffer of the next read right after a read completes; when no
 * read is waiting, bytes land in a small spare buffer and are queued (a
 * reply header, the first bytes of a body), then copied into the next read.
 */
class RawConnection {
  private target: Uint8Array = EMPTY;
  private filled = 0;
  private waiting: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly spare = Buffer.allocUnsafe(64 << 10);
  private queued: Buffer[] = [];
  readonly socket: Socket;

  private constructor(host: string, port: number, tlsCa: Buffer | undefined) {
    if (tlsCa) {
      // Under TLS the node tells raw connections from gRPC by ALPN. Node's
      // TLS sockets take no `onread`: records are decrypted into their own
      // buffers, then copied into the waiting read.
      this.socket = tlsConnect({
        host,
        port,
        ca: tlsCa,
        ALPNProtocols: ["reef-raw"],
        servername: isIP(host) ? undefined : host,
      });
      this.socket.setNoDelay(true);
      this.socket.on("data", (chunk: Buffer) => {
        this.queued.push(chunk);
        this.drain();
        if (this.filled === this.target.length && this.waiting) {
          const w = this.waiting;
          this.waiting = undefined;
          w.resolve();
        }
      });
    } else {
      this.socket = this.plain(host, port);
    }
    this.socket.on("error", (e) => this.fail(new ConnectionError("UNAVAILABLE", `raw connection: ${e.message}`)));
    this.socket.on("close", () => this.fail(new ConnectionError("UNAVAILABLE", "the node closed the raw connection")));
  }

  /** A plain TCP connection reading straight into the waiting read's memory. */
  private plain(host: string, port: number): Socket {
    return connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: () => (this.filled < this.target.length ? this.target.subarray(this.filled) : this.spare),
        callback: (n: number, buf: Uint8Array) => {
          if (buf === this.spare) {
            this.queued.push(Buffer.from(this.spare.subarray(0, n)));
            this.drain();
          } else {
            this.filled += n;
          }
          if (this.filled === this.target.length && this.waiting) {
            const w = this.waiting;
            this.waiting = undefined;
            w.resolve();
          }
          return true;
        },
      },
    });
  }

  static open(host: string, port: number, tlsCa?: Buffer): Promise<RawConnection> {
    const c = new RawConnection(host, port, tlsCa);
    return new Promise((resolve, reject) => {
      c.socket.once(tlsCa ? "secureConnect" : "connect", () => resolve(c));
      c.socket.once("error", (e) => reject(new ConnectionError("UNAVAILABLE", `cannot connect to ${host}:${port}: ${e.message}`)));
    });
  }

  get broken(): boolean {
    return this.failure !== undefined;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.socket.destroy();
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(this.failure);
  }

  /** Fills `into` with the next bytes from the node. */
  read(into: Uint8Array): Promise<void> {
    this.target = into;
    this.filled = 0;
    this.drain();
    if (this.filled === into.length) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  /** Moves queued bytes into the current target. */
  private drain(): void {
    while (this.queued.length > 0 && this.filled < this.target.length) {
      const q = this.queued[0]!;
      const k = Math.min(q.length, this.target.length - this.filled);
      this.target.set(q.subarray(0, k), this.filled);
      this.filled += k;
      if (k === q.length) this.queued.shift();
      else this.queued[0] = q.subarray(k);
    }
  }

  /** Writes `data`; resolves once the socket has taken it. */
  write(data: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.socket.write(data, (e) => (e ? reject(this.failure ?? e) : resolve()));
    });
  }

  /**
   * Forgets the last read's memory: a kept connection would otherwise hold
   * the previous get's result (up to the object's size) until its next read.
   */
  forgetTarget(): void {
    this.target = EMPTY;
    this.filled = 0;
  }

  /** Reads a reply header: the size, or throws the node's typed error. */
  async reply(): Promise<number> {
    const head = Buffer.alloc(9);
    await this.read(head);
    const status = head[0]!;
    const size = Number(head.readBigUInt64LE(1));
    if (status === 0) return size;
    const len = Buffer.alloc(4);
    await this.read(len);
    const message = Buffer.alloc(len.readUInt32LE(0));
    await this.read(message);
    throw replyError(status, message.toString("utf8"));
  }

  close(): void {
    this.failure ??= new ConnectionError("UNAVAILABLE", "closed");
    this.forgetTarget();
    this.socket.destroy();
  }
}

/** `[0, len)` cut into up to MAX_STRIPES page-aligned ranges of at least STRIPE_MIN. */
function stripes(len: number): [number, number][] {
  const count = Math.min(MAX_STRIPES, Math.max(1, Math.floor(len / STRIPE_MIN)));
  const per = Math.ceil(len / count / 4096) * 4096;
  const out: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const start = Math.min(i * per, len);
    const end = Math.min((i + 1) * per, len);
    if (start < end || len === 0) out.push([start, end]);
  }
  return out;
}

/** Raw connections to one node. */
export class Streamer {
  private readonly host: string;
  private readonly port: number;
  private readonly auth: Buffer;
  private readonly tlsCa: Buffer | undefined;
  private idle: RawConnection[] = [];

  constructor(address: string, token: string | undefined, tlsCa?: Buffer) {
    this.tlsCa = tlsCa;
    const bare = address.replace(/^https?:\/\//, "").replace(/\/$/, "");
    const colon = bare.lastIndexOf(":");
    this.host = bare.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
    this.port = Number(bare.slice(colon + 1));
    this.auth = Buffer.from(token === undefined ? "" : `Bearer ${token}`);
  }

  /** Sends `data` as object `id`, whose buffer the session created with `stream: true`. */
  async push(id: bigint, data: Uint8Array): Promise<void> {
    await Promise.all(
      stripes(data.length).map(async ([start, end]) => {
        const conn = await this.open(PUSH_MAGIC, id, start, end);
        try {
          await conn.write(data.subarray(start, end));
          await conn.reply();
        } catch (e) {
          conn.close();
          throw e;
        }
        this.keep(conn);
      }),
    );
  }

  /**
   * Reads the `len` bytes of object `id` (pinned by the node for this
   * session) into `into` (exactly `len` bytes) or a new buffer.
   */
  async pull(id: bigint, len: number, into?: Uint8Array): Promise<Uint8Array> {
    const out = into ?? Buffer.allocUnsafe(len);
    await Promise.all(
      stripes(len).map(async ([start, end]) => {
        const conn = await this.open(PULL_MAGIC, id, start, end);
        try {
          await conn.read(out.subarray(start, end));
        } catch (e) {
          conn.close();
          throw e;
        }
        this.keep(conn);
      }),
    );
    return out;
  }

  /** Closes the kept connections. */
  close(): void {
    for (const c of this.idle) c.close();
    this.idle = [];
  }

  /** A connection on which a request was sent and accepted. */
  private async open(magic: Buffer, id: bigint, start: number, end: number): Promise<RawConnection> {
    const request = Buffer.alloc(8 + 2 + this.auth.length + 24);
    magic.copy(request, 0);
    request.writeUInt16LE(this.auth.length, 8);
    this.auth.copy(request, 10);
    let at = 10 + this.auth.length;
    request.writeBigUInt64LE(id, at);
    request.writeBigUInt64LE(BigInt(start), (at += 8));
    request.writeBigUInt64LE(BigInt(end), (at += 8));
    // A kept connection the node closed while it sat idle fails before any
    // reply: then once more on a new one.
    let kept = this.idle.pop();
    while (kept?.broken) kept = this.idle.pop();
    if (kept) {
      try {
        await kept.write(request);
        await kept.reply();
        return kept;
      } catch (e) {
        kept.close();
        if (e instanceof ReefError && !(e instanceof ConnectionError)) throw e;
      }
    }
    const conn = await RawConnection.open(this.host, this.port, this.tlsCa);
    try {
      await conn.write(request);
      await conn.reply();
    } catch (e) {
      conn.close();
      throw e;
    }
    return conn;
  }

  private keep(conn: RawConnection): void {
    conn.forgetTarget();
    if (this.idle.length < MAX_IDLE && !conn.broken) this.idle.push(conn);
    else conn.close();
  }
}
