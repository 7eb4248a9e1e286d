// OpenAI-shaped errors. Every failure the HTTP layer reports goes through ApiError so
// clients (the official SDKs included) see {"error": {message, type, param, code}}
// with the status they expect.

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'service_unavailable';

export interface ErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly param: string | null;
  readonly code: string | null;
  /** Extra response headers (Retry-After, WWW-Authenticate). */
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    opts: { type?: ErrorType; param?: string | null; code?: string | null; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = opts.type ?? defaultType(status);
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
    this.headers = opts.headers ?? {};
  }

  body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

function defaultType(status: number): ErrorType {
  if (status === 401) return 'authentication_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 503) return 'service_unavailable';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** A 400 about one request field; `param` names it the way the client wrote it. */
export function invalidField(param: string, message: string, code = 'invalid_value'): ApiError {
  return new ApiError(400, message, { param, code });
}

/**
 * Maps anything thrown inside a handler (or by Fastify itself: bad JSON, body too
 * large, wrong content type) onto an ApiError. Unknown errors become a 500 whose
 * message does not leak internals; the caller logs the original.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string } | null;
  const code = e?.code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new ApiError(413, 'Request body is too large.', { code: 'request_too_large' });
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new ApiError(415, 'Unsupported Content-Type; send application/json.', { code: 'unsupported_media_type' });
  }
  if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return new ApiError(400, 'The request body is empty; expected a JSON object.', { code: 'invalid_json' });
  }
  if (code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (e?.statusCode === 400 && err instanceof SyntaxError)) {
    return new ApiError(400, `The request body is not valid JSON: ${e?.message ?? 'parse error'}`, { code: 'invalid_json' });
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError(e.statusCode, e.message ?? 'Bad request');
  }
  return new ApiError(500, 'The server had an internal error while processing the request.', { code: 'internal_error' });
}
