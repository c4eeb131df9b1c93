// TEST ONLY: the error a promise is refused with, failing the test when it resolves instead.
import { expect } from 'vitest';

export async function refusal(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error;
}
