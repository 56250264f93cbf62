// Globals a Reef JS guest has (StarlingMonkey/SpiderMonkey) without lib.dom: the
// generated tsconfig of build.sh includes this file. console.* writes to the task's log.
declare global {
  interface Console {
    log(...parts: unknown[]): void;
    info(...parts: unknown[]): void;
    debug(...parts: unknown[]): void;
    trace(...parts: unknown[]): void;
    warn(...parts: unknown[]): void;
    error(...parts: unknown[]): void;
  }
  var console: Console;
  class TextEncoder {
    encode(input?: string): Uint8Array;
  }
  class TextDecoder {
    constructor(label?: string, options?: { fatal?: boolean });
    decode(input?: ArrayBufferView | ArrayBuffer): string;
  }
}
export {};
