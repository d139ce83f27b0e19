import { z } from 'zod';
import { BrokerError } from '../../errors/broker-error';

/**
 * Request input checked against its schema (src/http/schemas/): the value, or the one problem a
 * caller reads (400 invalid_request, its `detail` the message the schema gives the broken field).
 */
export class InputCheck<T> {
  private constructor(
    private readonly data: T | undefined,
    /** The issue reported, when the input breaks the schema. */
    private readonly issue: z.core.$ZodIssue | undefined,
  ) {}

  static of<S extends z.ZodType>(schema: S, value: unknown): InputCheck<z.output<S>> {
    const result = schema.safeParse(value);
    return result.success
      ? new InputCheck<z.output<S>>(result.data, undefined)
      : new InputCheck<z.output<S>>(undefined, reportedIssue(result.error.issues));
  }

  /**
   * Throws now when the problem is the body as a whole (not an object, an unknown field) or one
   * of `fields`: a route checks these before its lookups, the rest after them.
   */
  rejectIfAbout(...fields: string[]): void {
    const issue = this.issue;
    if (issue && (issue.path.length === 0 || fields.includes(String(issue.path[0])))) throw problemOf(issue);
  }

  /** The value, or the problem. */
  value(): T {
    if (this.issue) throw problemOf(this.issue);
    return this.data as T;
  }
}

/** The value of `value` under `schema`, or a 400 naming the field it breaks. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  return InputCheck.of(schema, value).value();
}

/**
 * The issue a caller is told about: zod reports the fields in the order the schema declares them;
 * of the first field's issues, the one about it as a whole (it is not an object, an unknown key,
 * too many entries) comes before one about a part of it, and a body-wide one before any field's.
 */
function reportedIssue(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue {
  const first = issues[0]!;
  const related = issues.filter(
    (issue) => issue.path.length === 0 || (first.path.length > 0 && issue.path[0] === first.path[0]),
  );
  return related.reduce((best, issue) => (issue.path.length < best.path.length ? issue : best), first);
}

/** Every request field carries its own message (src/http/schemas/fields.ts), shown as it is. */
function problemOf(issue: z.core.$ZodIssue): BrokerError {
  return new BrokerError('invalid_request', issue.message);
}
