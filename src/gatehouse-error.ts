/**
 * Local errors: a stable string `code` and structured `data`, never matched by message text.
 *
 * Codes used so far:
 * - `policy_invalid`: a policy file failed validation; `data.issues` lists `{file, line, column, message}`.
 * - `policy_unreadable`: a policy file could not be read; `data.file`.
 * - `usage`: a CLI call whose words are off; `data.hint`.
 * - `input_invalid`: an action that is not of the expected shape; `data.issues`.
 */
export class GatehouseError extends Error {
  readonly code: string;
  readonly data: Record<string, unknown>;

  constructor(code: string, message: string, data: Record<string, unknown> = {}) {
    super(message);
    this.name = 'GatehouseError';
    this.code = code;
    this.data = data;
  }
}
