/**
 * The handle a `use…` fixture answers: each field reads what `read` gives for it when the test reads
 * it (so after the fixture's beforeAll has run), and throws, naming the fixture and the field, when
 * that is still undefined (a field read at describe time, or an option not asked for).
 */
export function startedFields<T extends object>(
  fixture: string,
  read: { [K in keyof T]: () => T[K] | undefined },
): T {
  const fields = {} as T;
  for (const name of Object.keys(read) as Array<keyof T>) {
    Object.defineProperty(fields, name, {
      enumerable: true,
      get: () => {
        const value = read[name]();
        if (value === undefined)
          throw new Error(`${fixture}: ${String(name)} is read before its beforeAll has run`);
        return value;
      },
    });
  }
  return fields;
}
