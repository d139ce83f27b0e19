import type { z } from 'zod';
import type * as client from '../../../packages/client/src/types';
import type * as answers from '../../../src/http/schemas/answers';
import type * as owner from '../../../src/http/schemas/owner';
import type * as requests from '../../../src/http/schemas/requests';

/**
 * Its types are the check: test/unit/client/client-types-match-schemas.test.ts (and `tsc`)
 * type-check this file.
 *
 * The client package keeps its own copy of the internal API's shapes: it has no runtime dependency,
 * so it cannot use the broker's schemas (src/http/schemas/), from which the broker's types, its
 * input checks and the OpenAPI document all come. The types below must be the same, field for
 * field: a field added, removed, made optional or nullable, or an enum value added on one side
 * and not the other makes one of them `false`, which the type-check refuses.
 */

/** True when A and B are the same type (not merely assignable one way). */
type Equal<A, B> =
  (<T>() => T extends Plain<A> ? 1 : 2) extends <T>() => T extends Plain<B> ? 1 : 2 ? true : false;
/** A type written out field by field, however it was composed (interfaces, intersections, zod's). */
type Plain<T> = T extends object ? { [K in keyof T]: Plain<T[K]> } : T;
/** The named fields alone: the client's answers allow fields a newer broker may add. */
type Named<T> = { [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K] };
/** The string literals of a union that stays open with `string & {}`. */
type Literals<T> = T extends string ? (string extends T ? never : T) : never;

type Answer<S extends z.ZodType> = z.output<S>;
/** A request as the broker takes it in (after its clean-ups, such as an `end_user` text of null). */
type Request<S extends z.ZodType> = z.output<S>;
type ServerProblem = Answer<typeof answers.Problem>;

interface Agreement {
  AuthMode: Equal<client.AuthMode, Answer<typeof answers.AuthMode>>;
  TokenAnswer: Equal<client.TokenAnswer, Answer<typeof answers.Token>>;
  Connection: Equal<client.Connection, Answer<typeof answers.Connection>>;
  ConnectionLastError: Equal<client.ConnectionLastError, NonNullable<Answer<typeof answers.LastError>>>;
  ConnectionPage: Equal<client.ConnectionPage, Answer<typeof answers.ConnectionPage>>;
  ConnectSession: Equal<client.ConnectSession, Answer<typeof answers.ConnectSession>>;
  EndUser: Equal<client.EndUser, Answer<typeof owner.EndUser>>;
  ProviderInfo: Equal<Named<client.ProviderInfo>, Answer<typeof answers.ProviderInfo>>;
  ProblemBody: Equal<Omit<Named<client.ProblemBody>, 'code'>, Omit<ServerProblem, 'code'>>;
  ProblemCode: Equal<Literals<client.ProblemCode>, ServerProblem['code']>;
  AuditEntry: Equal<client.AuditEntry, Answer<typeof answers.AuditEntry>>;
  AuditPage: Equal<client.AuditPage, Answer<typeof answers.AuditPage>>;
  OwnerFields: Equal<client.OwnerFields, Request<typeof requests.OwnerPatch>>;
  ConnectSessionRequest: Equal<client.ConnectSessionRequest, Request<typeof requests.ConnectSessionRequest>>;
  ImportRequest: Equal<client.ImportRequest, Request<typeof requests.ImportRequest>>;
}

// Each `true` is checked against what the types say: a `false` there is a type error on its line.
export const agreement: Agreement = {
  AuthMode: true,
  TokenAnswer: true,
  Connection: true,
  ConnectionLastError: true,
  ConnectionPage: true,
  ConnectSession: true,
  EndUser: true,
  ProviderInfo: true,
  ProblemBody: true,
  ProblemCode: true,
  AuditEntry: true,
  AuditPage: true,
  OwnerFields: true,
  ConnectSessionRequest: true,
  ImportRequest: true,
};
