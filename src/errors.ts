export interface FieldError {
  path: string;
  message: string;
}

/** A failure with a contract error code; the API turns it into problem+json. */
export class AppError extends Error {
  readonly errors?: FieldError[];
  readonly headers?: Record<string, string>;

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options: { errors?: FieldError[]; headers?: Record<string, string> } | FieldError[] = {},
    legacyHeaders?: Record<string, string>,
  ) {
    super(message);
    const opts = Array.isArray(options) ? { errors: options, headers: legacyHeaders } : options;
    this.errors = opts.errors;
    this.headers = opts.headers ?? legacyHeaders;
  }
}

export const notFound = (what = 'resource') => new AppError(404, 'not_found', `No such ${what}.`);
