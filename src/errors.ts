/** A bad action input. The message names the input and the value so the user can find and fix it. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    readonly value: string,
    expected: string,
  ) {
    super(`${input}: ${JSON.stringify(value)} ${expected}`);
    this.name = 'InputError';
  }
}

/** Bad usage of the command: an unknown flag, a flag without its value. Exit code 2, like an invalid value. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** No Docker daemon answered at the host (the command exits 3 for this). */
export class DaemonUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DaemonUnreachableError';
  }
}

/** The inventory could not be taken: nothing was planned or removed (the gates before may have run). */
export class InventoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InventoryError';
  }
}

/** The daemon's own message when it gave one (`json.message`), else the error's. */
export function messageOf(error: unknown): string {
  const e = error as { json?: { message?: string } | null; message?: string } | undefined;
  return (e?.json?.message ?? e?.message ?? String(error)).trim();
}
