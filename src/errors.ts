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
