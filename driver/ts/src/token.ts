// The cluster token: every RPC carries `authorization: Bearer <token>`.

import { readFileSync } from "node:fs";

import { ArgumentError } from "./errors.js";

export interface TokenOptions {
  /** The cluster token itself. */
  token?: string;
  /** A file holding the token (a head node writes `<data-dir>/token`). */
  tokenFile?: string;
}

/**
 * The token to send, from (first found) the `token` option, the `tokenFile`
 * option, `$REEF_TOKEN`, `$REEF_TOKEN_FILE`; `undefined` when none is set.
 */
export function resolveToken(options: TokenOptions, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (options.token !== undefined) {
    if (typeof options.token !== "string") {
      throw new ArgumentError(`token must be a string, got ${typeof options.token}`);
    }
    return checkToken(options.token, "the token option");
  }
  if (options.tokenFile !== undefined) {
    if (typeof options.tokenFile !== "string") {
      throw new ArgumentError(`tokenFile must be a path string, got ${typeof options.tokenFile}`);
    }
    return readToken(options.tokenFile);
  }
  if (env.REEF_TOKEN) {
    return checkToken(env.REEF_TOKEN, "$REEF_TOKEN");
  }
  if (env.REEF_TOKEN_FILE) {
    return readToken(env.REEF_TOKEN_FILE);
  }
  return undefined;
}

function readToken(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ArgumentError(`cannot read the token file ${path}: ${(e as Error).message}`);
  }
  return checkToken(text, `token file ${path}`);
}

function checkToken(raw: string, source: string): string {
  const token = raw.trim();
  if (token === "") {
    throw new ArgumentError(`${source} is empty`);
  }
  // Metadata values must be printable ASCII.
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new ArgumentError(`${source} holds characters a gRPC header cannot carry`);
  }
  return token;
}
