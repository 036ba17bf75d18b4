/** The typed REST client (generated from the server's OpenAPI schema) with session + CSRF handling. */
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";
import { ApiError, parseRetryAfter } from "./errors";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

/** Value of a cookie (the CSRF token is read at every request: it rotates at login). */
export function readCookie(name: string): string | null {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return null;
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (!SAFE_METHODS.has(request.method)) {
      const token = readCookie("csrftoken");
      if (token) request.headers.set("X-CSRFToken", token);
    }
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use(csrf);

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** Return the data of an openapi-fetch call, or throw an {@link ApiError} carrying the server's message. */
export async function unwrap<T>(call: Promise<FetchResult<T>>): Promise<T> {
  let result: FetchResult<T>;
  try {
    result = await call;
  } catch (e) {
    throw new Error(`the server cannot be reached (${e instanceof Error ? e.message : String(e)})`);
  }
  const { data, error, response } = result;
  if (!response.ok) {
    throw new ApiError(response.status, error, `${response.status} ${response.statusText || "error"}`,
      parseRetryAfter(response.headers.get("Retry-After")));
  }
  return data as T;
}

/** Listing size used by the UI (the API paginates with limit/offset). */
export const PAGE_LIMIT = 200;
