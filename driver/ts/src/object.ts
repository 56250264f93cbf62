// Handles to objects in the cluster.

import type { Connection } from "./connection.js";
import { setObjectRefCheck } from "./values.js";

/** Sends `Release` for refs the program dropped without calling `release()`. */
const finalizer = new FinalizationRegistry<{ id: bigint; conn: Connection }>(({ id, conn }) => {
  if (!conn.closed) {
    conn.send({ release: { ids: [String(id)] } });
  }
});

/**
 * A handle to an object: a put value, or the (possibly pending) result of a
 * task or actor call. Pass it as an argument of further tasks to build DAGs;
 * read it with `cluster.get` / `cluster.getBytes`.
 *
 * The node keeps the object while a handle to it lives: call `release()` when
 * done, or let the garbage collector do it.
 */
export class ObjectRef {
  /** @internal */
  readonly conn: Connection;
  readonly #id: bigint;
  #released = false;

  /** @internal */
  constructor(id: bigint, conn: Connection) {
    this.#id = id;
    this.conn = conn;
    finalizer.register(this, { id, conn }, this);
  }

  /** The object id (`prefix << 40 | counter` for objects this driver created). */
  get id(): bigint {
    return this.#id;
  }

  /** Whether `release()` was called. */
  get released(): boolean {
    return this.#released;
  }

  /** Tells the node this driver no longer needs the object (idempotent). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    finalizer.unregister(this);
    if (!this.conn.closed) {
      this.conn.send({ release: { ids: [String(this.#id)] } });
    }
  }

  toString(): string {
    return `ObjectRef(0x${this.#id.toString(16)})`;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

setObjectRefCheck((v) => v instanceof ObjectRef);
